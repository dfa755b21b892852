"""Fit the predictor and write the lookup table (`nas-fit`). Its logic and config: `predictor.cli.fit`."""

from predictor.cli import fit

if __name__ == "__main__":
    fit()

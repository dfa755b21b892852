"""The whole pipeline into one folder (`nas-run`). Its logic and config: `predictor.cli.run`."""

from predictor.cli import run

if __name__ == "__main__":
    run()

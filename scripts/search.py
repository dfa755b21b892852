"""Search a space too large to tabulate (`nas-search`). Its logic and config: `predictor.cli.search`."""

from predictor.cli import search

if __name__ == "__main__":
    search()

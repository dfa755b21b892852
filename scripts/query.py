"""The table's best archs under budgets (`nas-query`). Its logic and config: `predictor.cli.query`."""

from predictor.cli import query

if __name__ == "__main__":
    query()

"""Train one arch standalone (`nas-retrain`). Its logic and config: `supernet.cli.retrain`."""

from supernet.cli import retrain

if __name__ == "__main__":
    retrain()

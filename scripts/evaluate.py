"""Evaluate subnets with inherited weights (`nas-evaluate`). Its logic and config: `supernet.cli.evaluate`."""

from supernet.cli import evaluate

if __name__ == "__main__":
    evaluate()

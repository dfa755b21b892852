"""Train the one-shot supernet (`nas-train`). Its logic and config: `supernet.cli.train`."""

from supernet.cli import train

if __name__ == "__main__":
    train()

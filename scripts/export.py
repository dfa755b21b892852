"""Export one arch as a plain network (`nas-export`). Its logic and config: `supernet.cli.export`."""

from supernet.cli import export

if __name__ == "__main__":
    export()

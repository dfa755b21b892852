"""Build a per-op latency table on this machine (`nas-latency`). Its logic and config: `supernet.cli.latency`."""

from supernet.cli import latency

if __name__ == "__main__":
    latency()

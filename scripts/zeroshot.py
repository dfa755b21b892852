"""Score archs with zero-shot proxies at initialisation (`nas-zeroshot`). Its logic and config: `supernet.cli.zeroshot`."""

from supernet.cli import zeroshot

if __name__ == "__main__":
    zeroshot()

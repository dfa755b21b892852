"""One-shot supernet: search spaces, weight-sharing supernet, training, evaluation, proxies.

`build_network` turns a searched arch into a plain `nn.Module` (see `supernet.network`).
"""

from supernet.network import build_network

__all__ = ["build_network"]

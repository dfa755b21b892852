"""One-shot supernet: search spaces, weight-sharing supernet, training, evaluation, proxies."""

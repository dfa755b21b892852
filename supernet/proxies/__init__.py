"""Zero-shot proxies: score an arch's freshly initialised network on one batch, no training.

Importing the package registers `wrcor`, `meco`, `naswot`, `synflow`, `params` and `flops`;
`rank_vote` combines any subset once every arch is scored.
"""

from supernet.proxies import cost, meco, naswot, synflow, wrcor  # noqa: F401  (registers the proxies)
from supernet.proxies.common import ReLURecorder, build_scoring_net, fixed_batch, logdet_ridge
from supernet.proxies.registry import (
    PROXIES,
    ProxyContext,
    get_proxy,
    mean_scores,
    reads_bf16,
    register_proxy,
    score_archs,
)
from supernet.proxies.vote import average_ranks, rank_vote
from supernet.proxies.wrcor import abs_corr_sum, wrcor_matrix

__all__ = [
    "PROXIES",
    "ProxyContext",
    "ReLURecorder",
    "abs_corr_sum",
    "average_ranks",
    "build_scoring_net",
    "fixed_batch",
    "get_proxy",
    "logdet_ridge",
    "mean_scores",
    "rank_vote",
    "reads_bf16",
    "register_proxy",
    "score_archs",
    "wrcor_matrix",
]

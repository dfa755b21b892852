"""NASWOT (Mellor et al., 2021): how differently a fresh network's ReLUs carve up a batch.

Every ReLU call gives each sample a binary code, 1 where its pre-activation is positive. With N_A the
total code length, K = N_A - Hamming distance between the samples' codes, i.e.
K = c c^T + (1 - c)(1 - c)^T over the concatenated codes c `(B, N_A)`; the score is log det K.
Same network and batch as WRCor (BatchNorm in training mode), forward pass only.
"""

from __future__ import annotations

import torch

from supernet.model import SuperNet
from supernet.proxies.common import group_by_size, logdet_ridge, recorder_for, workspace_for
from supernet.proxies.registry import ProxyContext, register_proxy
from supernet.space import Arch


def naswot_matrix(net: SuperNet, arch: Arch, x: torch.Tensor, ctx: ProxyContext) -> torch.Tensor:
    """NASWOT's K `(B, B)` float64 for the path `arch` on the images `x` `(B, C, H, W)`."""
    rec = recorder_for(net, ctx.cache)
    with torch.no_grad(), rec.record() as records:
        net(x, arch)
    acts = [a for _, a in records]
    B = x.shape[0]
    ws = workspace_for(x.device, ctx.cache)
    # Over the concatenated codes c (B, N_A): c c^T + (1 - c)(1 - c)^T = 2 c c^T - r 1^T - 1 r^T + N_A,
    # r the row sums; one Gram per group of equal-size responses. Codes are 0/1 and every count stays
    # far below 2^24, so the float32 sums are exact integers.
    G = torch.zeros(B, B, dtype=torch.float64, device=x.device)
    r = torch.zeros(B, dtype=torch.float64, device=x.device)
    n_codes = 0
    for part in group_by_size(acts, B):
        D = acts[part[0]][0].numel()
        X = ws[: len(part) * B * D].view(len(part), B, D)
        for j, i in enumerate(part):
            X[j].copy_(acts[i].reshape(B, D) > 0)
        G += torch.bmm(X, X.transpose(1, 2)).sum(0).double()
        r += X.sum(dim=(0, 2)).double()
        n_codes += len(part) * D
    return 2 * G - r[:, None] - r[None, :] + n_codes


@register_proxy("naswot")
def naswot(
    net: SuperNet, arch: Arch, x: torch.Tensor, y: torch.Tensor, ctx: ProxyContext
) -> torch.Tensor:
    """log det of NASWOT's K; counts ridged (singular) archs in `naswot/ridge`."""
    score, ridged = logdet_ridge(naswot_matrix(net, arch, x, ctx))
    ctx.count("naswot/ridge", ridged)
    return score

"""MeCo (Jiang et al., NeurIPS 2023): how decorrelated a fresh network's feature maps are.

For every module call that outputs a feature map `(B, C, H, W)`, take the first image's map as C
channels observed at H x W positions, form their Pearson correlation matrix `(C, C)` (a channel
that is constant has no correlation: its row and column are 0), and take its smallest eigenvalue.
The score is the sum over those calls. Containers count too (a stage's output is also its last
block's), as in the definition, which hooks every module. Same network as WRCor (BatchNorm in
training mode on the batch's statistics), forward pass only.

Only the first `MECO_IMAGES` images of the batch go through the network: the score reads one
image's maps, the others only set BatchNorm's statistics. Over 400 NB201 classes at C=8 N=1 on
CIFAR-10, 8 images and 64 ranked the same (Kendall 0.655 vs 0.652 against the truth; BENCHMARKS.md),
and 8 cost far less.
"""

from __future__ import annotations

import torch
from torch import nn

from supernet.model import SuperNet
from supernet.proxies.common import per_net
from supernet.proxies.registry import ProxyContext, register_proxy
from supernet.space import Arch

MECO_IMAGES = 8


class FeatureMaps:
    """Collects the first image's map of every 4-D module output while `active`; the hooks are
    registered once per network."""

    def __init__(self, net: nn.Module) -> None:
        self.active = False
        self.maps: list[torch.Tensor] = []
        for module in net.modules():
            module.register_forward_hook(self._hook)

    def _hook(self, module: nn.Module, inputs: tuple, output: object) -> None:
        if self.active and isinstance(output, torch.Tensor) and output.dim() == 4:
            self.maps.append(output[0].detach().reshape(output.shape[1], -1))


def min_eig_sum(maps: list[torch.Tensor]) -> torch.Tensor:
    """sum over `maps` of the smallest eigenvalue of each one's channel correlation matrix; maps
    of equal shape are stacked and decomposed in one batched call.

    Shapes:
        each map `(C, P)` (channels, positions) -> 0-dim float64.
    """
    total = torch.zeros((), dtype=torch.float64, device=maps[0].device if maps else "cpu")
    groups: dict[tuple[int, ...], list[torch.Tensor]] = {}
    for m in maps:
        groups.setdefault(tuple(m.shape), []).append(m)
    for same in groups.values():
        X = torch.stack(same).double()
        X = X - X.mean(dim=2, keepdim=True)
        G = X @ X.transpose(1, 2)
        norm = G.diagonal(dim1=1, dim2=2).clamp_min(0).sqrt()
        corr = (G / (norm[:, :, None] * norm[:, None, :])).nan_to_num(0.0, 0.0, 0.0)
        total = total + torch.linalg.eigvalsh(corr)[:, 0].sum()
    return total


@register_proxy("meco")
def meco(
    net: SuperNet, arch: Arch, x: torch.Tensor, y: torch.Tensor, ctx: ProxyContext
) -> torch.Tensor:
    """MeCo of the path `arch` on the first `MECO_IMAGES` images of `x` (see the module docstring).

    Shapes:
        x `(B, C, H, W)` -> 0-dim float64 on x's device.
    """
    fm = per_net(ctx.cache, "meco", net, lambda: FeatureMaps(net))
    fm.maps, fm.active = [], True
    try:
        with torch.no_grad():
            net(x[:MECO_IMAGES], arch)
    finally:
        fm.active = False
    return min_eig_sum(fm.maps)

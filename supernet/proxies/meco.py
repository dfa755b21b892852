"""MeCo (Jiang et al., NeurIPS 2023): how decorrelated a fresh network's feature maps are.

For every module call that outputs a feature map `(B, C, H, W)`, take each image's map as C
channels observed at H x W positions, form their Pearson correlation matrix `(C, C)` (a channel
that is constant has no correlation: its row and column are 0), and take its smallest eigenvalue.
The score is the sum over those calls, averaged over the images. Containers count too (a stage's
output is also its last block's), as in the definition, which hooks every module. Same network as
WRCor (BatchNorm in training mode on the batch's statistics), forward pass only.

The definition reads one image; this averages over the first `MECO_IMAGES` images of the batch,
which also set BatchNorm's statistics. Over 800 NB201 classes at C=8 N=1 on CIFAR-10 and 4 seeds,
one image ranked at Kendall 0.654-0.677 against the truth and the mean over 8 at 0.688-0.697: one
image's score moves with the seed (over all 15,625 archs 0.662-0.723). 16 images did not rank
better than 8, nor did C=16 (BENCHMARKS.md).
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
    """Collects every 4-D module output while `active`, as `(B, C, H*W)`: each image's maps. The
    hooks are registered once per network.

    A tensor that several modules return (a `Sequential`'s output is its last child's, an
    `Identity` returns its input) is one map counted as many times as it was returned: the
    definition sums over module calls, and a repeat adds the same eigenvalues again. At C=8 N=1 a
    quarter of the calls are such repeats (67 calls, 50 distinct maps per arch).
    """

    def __init__(self, net: nn.Module) -> None:
        self.active = False
        self.maps: list[torch.Tensor] = []
        self.counts: list[int] = []
        self._index: dict[int, int] = {}  # id of a returned tensor -> its place in `maps`
        self._held: list[torch.Tensor] = []  # the returned tensors: their ids stay unique
        for module in net.modules():
            module.register_forward_hook(self._hook)

    def start(self) -> None:
        self.maps, self.counts, self._index, self._held = [], [], {}, []
        self.active = True

    def _hook(self, module: nn.Module, inputs: tuple, output: object) -> None:
        if not (self.active and isinstance(output, torch.Tensor) and output.dim() == 4):
            return
        seen = self._index.get(id(output))
        if seen is not None:
            self.counts[seen] += 1
            return
        self._index[id(output)] = len(self.maps)
        self._held.append(output)
        self.maps.append(output.detach().flatten(2))
        self.counts.append(1)


def min_eig_sum(maps: list[torch.Tensor], counts: list[int] | None = None) -> torch.Tensor:
    """sum over `maps` of the smallest eigenvalue of each one's channel correlation matrix, each
    map's taken `counts[i]` times (default once); maps of equal shape are stacked and decomposed in
    one batched call.

    A map with no more positions than channels (`P <= C`: 8x8 digits' last stages) is skipped: its
    centred rows span at most P - 1 dimensions, so the smallest eigenvalue is exactly 0. The Gram
    matrices are summed in float32 (4-6x faster than float64 over 1,024 positions), the
    correlations decomposed in float64.

    Shapes:
        each map `(C, P)` (channels, positions), or `(B, C, P)`: B maps -> 0-dim float64.
    """
    total = torch.zeros((), dtype=torch.float64, device=maps[0].device if maps else "cpu")
    counts = [1] * len(maps) if counts is None else counts
    if len(counts) != len(maps):
        raise ValueError(f"{len(maps)} maps but {len(counts)} counts")
    groups: dict[tuple[int, ...], list[tuple[torch.Tensor, int]]] = {}
    for m, k in zip(maps, counts):
        if m.shape[-1] > m.shape[-2]:
            groups.setdefault(tuple(m.shape[-2:]), []).append((m.reshape(-1, *m.shape[-2:]), k))
    for same in groups.values():
        X = torch.cat([m for m, _ in same]).float()
        weight = torch.tensor(
            [k for m, k in same for _ in range(len(m))], dtype=torch.float64, device=X.device
        )
        X = X - X.mean(dim=2, keepdim=True)
        G = (X @ X.transpose(1, 2)).double()
        norm = G.diagonal(dim1=1, dim2=2).clamp_min(0).sqrt()
        corr = (G / (norm[:, :, None] * norm[:, None, :])).nan_to_num(0.0, 0.0, 0.0)
        total = total + (torch.linalg.eigvalsh(corr)[:, 0] * weight).sum()
    return total


@register_proxy("meco")
def meco(
    net: SuperNet, arch: Arch, x: torch.Tensor, y: torch.Tensor, ctx: ProxyContext
) -> torch.Tensor:
    """MeCo of the path `arch`, the mean over the first `MECO_IMAGES` images of `x` (see the module
    docstring).

    Shapes:
        x `(B, C, H, W)` -> 0-dim float64 on x's device.
    """
    fm = per_net(ctx.cache, "meco", net, lambda: FeatureMaps(net))
    x = x[:MECO_IMAGES]
    fm.start()
    try:
        with torch.no_grad():
            net(x, arch)
    finally:
        fm.active = False
    return min_eig_sum(fm.maps, fm.counts) / len(x)

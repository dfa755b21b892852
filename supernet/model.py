"""The one-shot supernet over the NAS-Bench-201 cell space."""

from __future__ import annotations

import torch
from torch import nn

from supernet.ops import ResidualReduction, batch_norm, make_op
from supernet.space import Arch, NB201Space, SearchSpace


class SuperCell(nn.Module):
    """An NB201 cell holding every candidate op on each of its 6 edges."""

    def __init__(self, space: NB201Space, channels: int, affine: bool, track: bool) -> None:
        super().__init__()
        self.space = space
        self.edges = nn.ModuleList(
            nn.ModuleList(make_op(op, channels, affine, track) for op in space.ops)
            for _ in space.edges
        )
        self._none = space.ops.index("none")
        self._skip = space.ops.index("skip_connect")

    def forward(self, x: torch.Tensor, arch: Arch) -> torch.Tensor:
        """Runs only the ops of `arch`; a node with no live input is zero (kept as None until needed)."""
        nodes: list[torch.Tensor | None] = [x, None, None, None]
        for e, (to, src) in enumerate(self.space.edges):
            op = arch[e]
            h = nodes[src]
            if op == self._none:
                continue
            if h is None:
                if op == self._skip or not isinstance(self.edges[e][op], nn.Sequential):
                    continue  # skip or pooling of zero is zero
                h = torch.zeros_like(x)  # conv-BN of zero is BN's bias, not zero
            out = self.edges[e][op](h)
            nodes[to] = out if nodes[to] is None else nodes[to] + out
        return torch.zeros_like(x) if nodes[3] is None else nodes[3]


class SuperNet(nn.Module):
    """NB201 macro skeleton with a `SuperCell` at every cell position.

    Stem conv 3x3 -> N cells (C) -> reduction -> N cells (2C) -> reduction -> N cells (4C) -> BN-ReLU ->
    global average pool -> linear. `forward(x, arch)` is stateless and computes exactly the sampled path.

    Args:
        space: the cell space; its `C` and `N` set the width and depth.
        num_classes: classifier outputs.
        in_channels: input image channels.
        affine: BatchNorm affine parameters.
        track_running_stats: BatchNorm running statistics (False: batch statistics at eval too).
    """

    def __init__(
        self,
        space: NB201Space,
        num_classes: int,
        in_channels: int = 3,
        affine: bool = False,
        track_running_stats: bool = False,
    ) -> None:
        super().__init__()
        self.space = space
        C, N = space.C, space.N
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, C, 3, padding=1, bias=False),
            batch_norm(C, affine, track_running_stats),
        )
        blocks: list[nn.Module] = []
        for stage in range(3):
            c = C * 2**stage
            if stage > 0:
                blocks.append(ResidualReduction(c // 2, c, affine, track_running_stats))
            blocks.extend(SuperCell(space, c, affine, track_running_stats) for _ in range(N))
        self.blocks = nn.ModuleList(blocks)
        self.head_bn = batch_norm(4 * C, affine, track_running_stats)
        self.head_relu = nn.ReLU(inplace=False)
        self.classifier = nn.Linear(4 * C, num_classes)

    def forward(self, x: torch.Tensor, arch: Arch) -> torch.Tensor:
        """Logits of the subnet `arch`.

        Shapes:
            x `(B, in_channels, H, W)` -> logits `(B, num_classes)`.
        """
        h = self.stem(x)
        for block in self.blocks:
            h = block(h, arch) if isinstance(block, SuperCell) else block(h)
        h = self.head_relu(self.head_bn(h))
        return self.classifier(h.mean(dim=(2, 3)))

    def block_index(self) -> dict[nn.Module, int]:
        """Maps every ReLU to the position of the block it sits in (cells and reductions from 0; the
        head's ReLU is `num_blocks`)."""
        index: dict[nn.Module, int] = {}
        for i, block in enumerate(self.blocks):
            for m in block.modules():
                if isinstance(m, nn.ReLU):
                    index[m] = i
        index[self.head_relu] = len(self.blocks)
        return index


def build_supernet(
    space: SearchSpace,
    num_classes: int,
    in_channels: int = 3,
    affine: bool = False,
    track_running_stats: bool = False,
) -> nn.Module:
    """The supernet of `space` (the config's `supernet.net` target): see `supernet_class`."""
    return supernet_class(space)(space, num_classes, in_channels, affine, track_running_stats)


def supernet_class(space: SearchSpace) -> type[nn.Module]:
    """The supernet that goes with a search space."""
    if space.name == "chain":
        from supernet.chain_model import ChainSuperNet

        return ChainSuperNet
    return SuperNet

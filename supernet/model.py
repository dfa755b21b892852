"""The one-shot supernet over the NAS-Bench-201 cell space (`NB201Space.supernet_class`)."""

from __future__ import annotations

import torch
from torch import nn

from supernet.fewshot import FewShotSuperNet
from supernet.nb201_space import NB201Space
from supernet.ops import ConvSlice, ResidualReduction, SharedConvs, batch_norm, make_op
from supernet.space_base import Arch, SearchSpace

CONV_KERNELS = {"nor_conv_1x1": 1, "nor_conv_3x3": 3}


class SuperCell(nn.Module):
    """An NB201 cell holding every candidate op on each of its 6 edges.

    With `share_convs`, each edge's two convs are slices of one `SharedConvs` (in `self.convs`,
    `share_bn`: one BatchNorm for both); `self.edges[e]` then holds parameter-free `ConvSlice`s in
    the conv slots, so every edge still indexes its ops by the space's op order.
    """

    def __init__(
        self,
        space: NB201Space,
        channels: int,
        affine: bool,
        track: bool,
        share_convs: bool = False,
        share_bn: bool = False,
    ) -> None:
        super().__init__()
        self.space = space
        if share_convs:
            self.convs = nn.ModuleList(
                SharedConvs(channels, affine, track, share_bn) for _ in space.edges
            )
            self.edges = nn.ModuleList(
                nn.ModuleList(
                    ConvSlice(shared, CONV_KERNELS[op])
                    if op in CONV_KERNELS
                    else make_op(op, channels, affine, track)
                    for op in space.ops
                )
                for shared in self.convs
            )
        else:
            self.edges = nn.ModuleList(
                nn.ModuleList(make_op(op, channels, affine, track) for op in space.ops)
                for _ in space.edges
            )
        self._none = space.ops.index("none")
        self._skip = space.ops.index("skip_connect")
        self._conv_ops = {space.ops.index(op) for op in CONV_KERNELS}

    def forward(self, x: torch.Tensor, arch: Arch) -> torch.Tensor:
        """Runs only the ops of `arch`; a node with no live input is zero (kept as None until needed)."""
        nodes: list[torch.Tensor | None] = [x, None, None, None]
        for e, (to, src) in enumerate(self.space.edges):
            op = arch[e]
            h = nodes[src]
            if op == self._none:
                continue
            if h is None:
                if op not in self._conv_ops:
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
        share_convs: each edge's `nor_conv_1x1` is the centre of its `nor_conv_3x3` (one weight).
        share_bn: with `share_convs`, the two convs of an edge also share one BatchNorm.
    """

    def __init__(
        self,
        space: NB201Space,
        num_classes: int,
        in_channels: int = 3,
        affine: bool = False,
        track_running_stats: bool = False,
        share_convs: bool = False,
        share_bn: bool = False,
    ) -> None:
        super().__init__()
        if share_bn and not share_convs:
            raise ValueError(
                "share_bn=True needs share_convs=True (one BatchNorm per shared conv)"
            )
        self.space = space
        if share_convs:  # checkpoint meta: the edges' parameter layout (absent: separate weights)
            self.weights = "shared_convs_bn" if share_bn else "shared_convs"
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
            blocks.extend(
                SuperCell(space, c, affine, track_running_stats, share_convs, share_bn)
                for _ in range(N)
            )
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
    split_edge: int | None = None,
    **options: bool,
) -> nn.Module:
    """The supernet of `space` (the config's `supernet.net` target): `space.build_supernet` with
    `affine`, `track_running_stats` and the sharing options (`share_convs`, `share_bn`: NB201's
    cells; the chain's blocks are always entangled). With `split_edge`, a few-shot supernet
    (`supernet.fewshot.FewShotSuperNet`): one such supernet per op of that decision."""

    def build() -> nn.Module:
        return space.build_supernet(num_classes, in_channels, **options)

    return build() if split_edge is None else FewShotSuperNet(build, space, split_edge)


def layout_options(weights: str | None) -> dict[str, bool]:
    """`build_supernet`'s sharing options for a checkpoint meta's `weights` layout."""
    if weights in (None, "entangled"):
        return {}
    if weights not in ("shared_convs", "shared_convs_bn"):
        raise ValueError(
            f"unknown supernet weights layout {weights!r}; expected shared_convs or "
            "shared_convs_bn (or none)"
        )
    return {"share_convs": True, "share_bn": weights == "shared_convs_bn"}

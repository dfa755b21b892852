"""A searched arch as a plain network: only the chosen ops, dead edges removed, no supernet needed.

`build_network(space, arch, num_classes, ...)` takes plain values (a space name and its config, as
`model.json` of `scripts/export.py` holds them) and returns an `nn.Module` whose `forward(x)` gives
the logits. `inherit_weights(network, supernet)` copies the supernet's weights of that path into it:
given the same weights and BatchNorm statistics the network computes what the supernet's path does.

One difference is by design: an NB201 cell edge whose input node is zero (no live path reaches it) is
removed, as the space's isomorphism key counts it zero. The supernet's path still runs a conv there,
and conv-BN of zero is BN's shift: zero only for a BN without affine parameters that normalises by
batch statistics (the supernet's default). With affine BN or running statistics such a dead edge adds
a constant to the supernet's path that the pruned network lacks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from supernet.chain_space import ChainSpace, parse_op
from supernet.classes import live_edges
from supernet.fewshot import FewShotSuperNet
from supernet.ops import ResidualReduction, batch_norm, make_op
from supernet.space import Arch, NB201Space, SearchSpace, get_space

CONV_KERNELS = {"nor_conv_1x1": 1, "nor_conv_3x3": 3}


class Cell(nn.Module):
    """An NB201 cell holding the op of each live edge only (`supernet.classes.live_edges`).

    The edge `to <- src` is the submodule `edges["{to}_{src}"]`; a cell with no live edge outputs
    zero.

    Shapes:
        input `(B, C, H, W)`, output `(B, C, H, W)`.
    """

    def __init__(
        self, space: NB201Space, arch: Arch, channels: int, affine: bool, track: bool
    ) -> None:
        super().__init__()
        self.links: list[tuple[int, int, str, int]] = []  # (to, src, key, edge index)
        self.edges = nn.ModuleDict()
        for e, ((to, src), live) in enumerate(zip(space.edges, live_edges(space, arch))):
            if live:
                key = f"{to}_{src}"
                self.edges[key] = make_op(space.ops[arch[e]], channels, affine, track)
                self.links.append((to, src, key, e))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = {0: x}  # a live edge's source always has a live input, so it is set by now
        for to, src, key, _ in self.links:
            out = self.edges[key](nodes[src])
            nodes[to] = out if to not in nodes else nodes[to] + out
        return nodes[3] if 3 in nodes else torch.zeros_like(x)


class StandaloneNetwork(nn.Module):
    """What every standalone network shares: `space` and `arch` it was built for, `stem[0]` the
    input conv, `stem[1]` its BatchNorm and `classifier` the last layer (the supernet's names, so
    `SupernetModule` trains it as a one-arch supernet).

    `forward(x, arch=None)`: `arch`, when given, must be this network's own.
    """

    weights = (
        "standalone"  # checkpoint meta: not a supernet layout, so no supernet loader takes it
    )
    space: SearchSpace
    arch: Arch

    def check_arch(self, arch: Sequence[int] | None) -> None:
        if arch is not None and tuple(arch) != self.arch:
            raise ValueError(
                f"this network is {self.space.to_str(self.arch)!r}; got arch {tuple(arch)!r}"
            )


class NB201Network(StandaloneNetwork):
    """The NB201 skeleton with one fixed `Cell` at every cell position (stem -> N cells -> reduction
    -> N cells -> reduction -> N cells -> BN-ReLU -> pool -> linear); see `supernet.model.SuperNet`.

    Shapes:
        x `(B, in_channels, H, W)` -> logits `(B, num_classes)`.
    """

    def __init__(
        self,
        space: NB201Space,
        arch: Arch,
        num_classes: int,
        in_channels: int = 3,
        affine: bool = True,
        track_running_stats: bool = True,
    ) -> None:
        super().__init__()
        self.space, self.arch = space, space.check(arch)
        C, N, track = space.C, space.N, track_running_stats
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, C, 3, padding=1, bias=False), batch_norm(C, affine, track)
        )
        blocks: list[nn.Module] = []
        for stage in range(3):
            c = C * 2**stage
            if stage > 0:
                blocks.append(ResidualReduction(c // 2, c, affine, track))
            blocks.extend(Cell(space, self.arch, c, affine, track) for _ in range(N))
        self.blocks = nn.ModuleList(blocks)
        self.head_bn = batch_norm(4 * C, affine, track)
        self.head_relu = nn.ReLU(inplace=False)
        self.classifier = nn.Linear(4 * C, num_classes)

    def forward(self, x: torch.Tensor, arch: Sequence[int] | None = None) -> torch.Tensor:
        self.check_arch(arch)
        h = self.stem(x)
        for block in self.blocks:
            h = block(h)
        return self.classifier(self.head_relu(self.head_bn(h)).mean(dim=(2, 3)))

    @torch.no_grad()
    def inherit(self, supernet: nn.Module) -> None:
        """Copies the supernet's (`supernet.model.SuperNet`) weights of this path, shared convs
        included (the 1x1 takes the centre of its edge's 3x3)."""
        copy_module(self.stem, supernet.stem)
        for block, sblock in zip(self.blocks, supernet.blocks):
            if not isinstance(block, Cell):
                copy_module(block, sblock)
                continue
            for _, _, key, e in block.links:
                op = self.space.ops[self.arch[e]]
                dst = block.edges[key]
                if op in CONV_KERNELS and hasattr(sblock, "convs"):  # share_convs
                    shared, k = sblock.convs[e], CONV_KERNELS[op]
                    bn = shared.bns[0 if len(shared.bns) == 1 else shared.kernel_sizes.index(k)]
                    copy_module(dst[1], shared.conv)
                    copy_module(dst[2], bn)
                else:
                    copy_module(dst, sblock.edges[e][self.arch[e]])
        copy_module(self.head_bn, supernet.head_bn)
        copy_module(self.classifier, supernet.classifier)


class InvertedResidualBlock(nn.Module):
    """A chain layer's block at its own kernel and expansion: expand 1x1 -> BN -> ReLU ->
    depthwise kxk (stride) -> BN -> ReLU -> project 1x1 -> BN, identity shortcut when the shape is
    kept. Parameter names are those of `supernet.chain_model.InvertedResidual`.

    Shapes:
        input `(B, c_in, H, W)`, output `(B, c_out, ceil(H / stride), ceil(W / stride))`.
    """

    def __init__(
        self, c_in: int, c_out: int, k: int, e: int, stride: int, affine: bool, track: bool
    ) -> None:
        super().__init__()
        hidden = c_in * e
        self.residual = stride == 1 and c_in == c_out
        self.expand = nn.Conv2d(c_in, hidden, 1, bias=False)
        self.bn1 = batch_norm(hidden, affine, track)
        self.relu1 = nn.ReLU(inplace=False)
        self.depthwise = nn.Conv2d(hidden, hidden, k, stride, k // 2, groups=hidden, bias=False)
        self.bn2 = batch_norm(hidden, affine, track)
        self.relu2 = nn.ReLU(inplace=False)
        self.project = nn.Conv2d(hidden, c_out, 1, bias=False)
        self.bn3 = batch_norm(c_out, affine, track)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.relu1(self.bn1(self.expand(x)))
        h = self.relu2(self.bn2(self.depthwise(h)))
        out = self.bn3(self.project(h))
        return x + out if self.residual else out


class ChainNetwork(StandaloneNetwork):
    """The chain with each layer's chosen block (`nn.Identity` for `skip`): stem conv 3x3 ->
    blocks -> head conv 1x1 -> ReLU -> pool -> linear; see `supernet.chain_model.ChainSuperNet`.

    Shapes:
        x `(B, in_channels, H, W)` -> logits `(B, num_classes)`.
    """

    def __init__(
        self,
        space: ChainSpace,
        arch: Arch,
        num_classes: int,
        in_channels: int = 3,
        affine: bool = True,
        track_running_stats: bool = True,
    ) -> None:
        super().__init__()
        self.space, self.arch = space, space.check(arch)
        track = track_running_stats
        c = space.channels(space.stem_channels)
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, c, 3, padding=1, bias=False),
            batch_norm(c, affine, track),
            nn.ReLU(inplace=False),
        )
        self.blocks = nn.ModuleList(
            nn.Identity()
            if a == space.skip
            else InvertedResidualBlock(
                ly.c_in, ly.c_out, *parse_op(space.ops[a]), ly.stride, affine, track
            )
            for ly, a in zip(space.chain, self.arch)
        )
        head = space.channels(space.head_channels)
        self.head = nn.Sequential(
            nn.Conv2d(space.chain[-1].c_out, head, 1, bias=False), batch_norm(head, affine, track)
        )
        self.head_relu = nn.ReLU(inplace=False)
        self.classifier = nn.Linear(head, num_classes)

    def forward(self, x: torch.Tensor, arch: Sequence[int] | None = None) -> torch.Tensor:
        self.check_arch(arch)
        h = self.stem(x)
        for block in self.blocks:
            h = block(h)
        return self.classifier(self.head_relu(self.head(h)).mean(dim=(2, 3)))

    @torch.no_grad()
    def inherit(self, supernet: nn.Module) -> None:
        """Copies the slices of the entangled supernet's (`ChainSuperNet`) blocks this arch uses:
        the first channels of each conv and BN, the centre of each depthwise kernel."""
        copy_module(self.stem, supernet.stem)
        for block, sblock in zip(self.blocks, supernet.blocks):
            if not isinstance(block, nn.Identity):
                copy_module(block, sblock)
        copy_module(self.head, supernet.head)
        copy_module(self.classifier, supernet.classifier)


def build_network(
    space: str | SearchSpace,
    arch: str | Sequence[int],
    num_classes: int,
    in_channels: int = 3,
    space_config: Mapping[str, Any] | None = None,
    affine: bool = True,
    track_running_stats: bool = True,
) -> StandaloneNetwork:
    """The standalone network of `arch`: only its ops, freshly initialised.

    Args:
        space: a registered space name (`nb201`, `chain`) or a built space.
        arch: an arch string or op indices.
        num_classes: classifier outputs.
        in_channels: input image channels.
        space_config: the space's constructor arguments (`SearchSpace.config()`), with a name.
        affine: BatchNorm affine parameters.
        track_running_stats: BatchNorm running statistics (False: batch statistics at eval too).

    Raises:
        ValueError: an unknown space, a bad config or arch (the message names it).
    """
    if isinstance(space, str):
        space = get_space(space, **dict(space_config or {}))
    elif space_config:
        raise ValueError("space_config goes with a space name, not with a built space")
    cls = space.network_class()  # ValueError for a space without one
    parsed = space.parse(arch) if isinstance(arch, str) else space.check(arch)
    return cls(space, parsed, int(num_classes), int(in_channels), affine, track_running_stats)


def network_spec(network: StandaloneNetwork) -> dict[str, Any]:
    """`build_network`'s arguments that rebuild `network` (plain JSON data: `model.json`)."""
    bn = network.stem[1]
    return {
        "space": network.space.name,
        "space_config": network.space.config(),
        "arch": network.space.to_str(network.arch),
        "num_classes": network.classifier.out_features,
        "in_channels": network.stem[0].in_channels,
        "affine": bn.affine,
        "track_running_stats": bn.track_running_stats,
    }


def _centre(w: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """The first channels and the centre of the kernel of `w`, as large as `shape`: how the
    supernets slice an op out of shared weights."""
    index = [slice(0, n) for n in shape[:2]]
    for n, m in zip(shape[2:], w.shape[2:]):
        index.append(slice((m - n) // 2, (m - n) // 2 + n))
    return w[tuple(index)]


@torch.no_grad()
def copy_module(dst: nn.Module, src: nn.Module) -> None:
    """Copies `src`'s weights into `dst`, module by module (children matched by name), each conv
    and BN sliced to `dst`'s size. A BN without affine parameters is the identity affine (1, 0);
    one without running statistics gives (0, 1, 0 batches)."""
    if isinstance(dst, nn.modules.batchnorm._BatchNorm):
        c = dst.num_features
        if dst.affine:
            dst.weight.copy_(src.weight[:c] if src.affine else torch.ones(c))
            dst.bias.copy_(src.bias[:c] if src.affine else torch.zeros(c))
        if dst.track_running_stats:
            have = src.track_running_stats and src.running_mean is not None
            dst.running_mean.copy_(src.running_mean[:c] if have else torch.zeros(c))
            dst.running_var.copy_(src.running_var[:c] if have else torch.ones(c))
            dst.num_batches_tracked.copy_(src.num_batches_tracked if have else 0)
        return
    if isinstance(dst, (nn.Conv2d, nn.Linear)):
        dst.weight.copy_(_centre(src.weight, dst.weight.shape))
        if dst.bias is not None:
            dst.bias.copy_(src.bias[: dst.bias.shape[0]])
        return
    for name, child in dst.named_children():
        copy_module(child, getattr(src, name))


def inherit_weights(network: StandaloneNetwork, supernet: nn.Module) -> StandaloneNetwork:
    """Copies `supernet`'s weights of `network`'s path into it (in place; returned too).

    Raises:
        ValueError: the supernet is of another space or layout than the network.
    """

    def layout(net: nn.Module) -> tuple[Any, ...]:
        return (
            net.space.name,
            net.space.config(),
            net.classifier.out_features,
            net.stem[0].in_channels,
        )

    if layout(network) != layout(supernet):
        raise ValueError(
            f"a network of (space, config, num_classes, in_channels) {layout(network)} cannot "
            f"take the weights of a {layout(supernet)} supernet"
        )
    if isinstance(supernet, FewShotSuperNet):  # the part that trained this arch
        supernet = supernet.part(network.arch)
    network.inherit(supernet)
    return network

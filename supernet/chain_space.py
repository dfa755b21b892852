"""A MobileNet-style chain space: one inverted-residual block (or `skip`) chosen per layer.

The network is a 3x3 conv stem, stages of layers of increasing width (the first layer of a stage may
downsample and change the width), a 1x1 head conv, global average pooling and a linear classifier.
Each layer picks one of 7 ops: an inverted-residual block `ir_k{3,5,7}_e{3,6}` (expand 1x1 ->
depthwise kxk -> project 1x1, each with BN, ReLU after the first two) or `skip` (the layer is
removed). `skip` is only allowed where the layer keeps the shape, i.e. not on the first layer of a
stage, so the first layers have 6 choices and the others 7.

Arch string: the layers' op names joined by `|`, first layer first, no leading or trailing bar,
e.g. `ir_k3_e3|skip|ir_k5_e6|ir_k7_e3` for 2 stages of 2 layers.

The canonical index is mixed radix: digit i is the op index of layer i, in base 6 on a stage's first
layer and base 7 elsewhere, first layer most significant (`skip`, the last op, never appears as a
base-6 digit). The default layout has 6^6 * 7^14 ~ 3.2e16 archs: far too many to enumerate, so
`all_archs` refuses above `max_enumerate` and such spaces are searched (predictor/search.py), not
tabulated.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from supernet.space_base import ENUMERATE_MAX, Arch, Cost, SearchSpace

if TYPE_CHECKING:
    pass

KERNELS = (3, 5, 7)
EXPANSIONS = (3, 6)


@dataclass(frozen=True)
class Layer:
    """One searchable layer of the chain: its input / output channels, stride and position."""

    c_in: int
    c_out: int
    stride: int
    stage: int
    first: bool  # the first layer of its stage: `skip` not allowed


@functools.cache  # cost() parses every layer's op: ~1.8M calls in one budgeted segment search
def parse_op(op: str) -> tuple[int, int]:
    """`ir_k5_e6` -> (kernel 5, expansion 6)."""
    _, k, e = op.split("_")
    return int(k[1:]), int(e[1:])


class ChainSpace(SearchSpace):
    """Stages of inverted-residual layers, one op per layer (see the module docstring).

    Args:
        widths: output channels of each stage (before `width_mult`).
        layers: searchable layers of each stage.
        strides: stride of each stage's first layer.
        stem_channels: channels of the 3x3 stem conv (before `width_mult`).
        head_channels: channels of the 1x1 head conv (before `width_mult`).
        width_mult: scales every width (rounded, at least 1 channel).
        max_enumerate: `all_archs` refuses spaces larger than this.
    """

    name = "chain"
    ops = tuple(f"ir_k{k}_e{e}" for k in KERNELS for e in EXPANSIONS) + ("skip",)
    graph_pool = "mean"  # a 4-layer GCN's output node sees only the last 4 of 20 layers
    has_latency_table = True

    def __init__(
        self,
        widths: Sequence[int] = (16, 24, 32, 64, 96, 160),
        layers: Sequence[int] = (2, 3, 4, 4, 4, 3),
        strides: Sequence[int] = (1, 2, 2, 2, 1, 2),
        stem_channels: int = 16,
        head_channels: int = 640,
        width_mult: float = 1.0,
        max_enumerate: int = ENUMERATE_MAX,
    ) -> None:
        widths, layers, strides = (tuple(int(v) for v in s) for s in (widths, layers, strides))
        if not widths or not len(widths) == len(layers) == len(strides):
            raise ValueError(
                f"chain: widths {widths}, layers {layers} and strides {strides} must be "
                "non-empty and of equal length (one entry per stage)"
            )
        if min(widths) < 1 or min(layers) < 1 or not set(strides) <= {1, 2}:
            raise ValueError(
                f"chain: widths {widths} and layers {layers} must be positive, strides "
                f"{strides} 1 or 2"
            )
        if width_mult <= 0 or stem_channels < 1 or head_channels < 1:
            raise ValueError(
                f"chain: width_mult={width_mult}, stem_channels={stem_channels} and "
                f"head_channels={head_channels} must be positive"
            )
        self.widths, self.layers, self.strides = widths, layers, strides
        self.stem_channels, self.head_channels = stem_channels, head_channels
        self.width_mult, self.max_enumerate = float(width_mult), int(max_enumerate)
        self.skip = self.ops.index("skip")
        chain, c = [], self.channels(stem_channels)
        for stage, (w, n, s) in enumerate(zip(widths, layers, strides)):
            for i in range(n):
                chain.append(Layer(c, self.channels(w), s if i == 0 else 1, stage, i == 0))
                c = self.channels(w)
        self.chain: tuple[Layer, ...] = tuple(chain)
        # skip is the last op, so a first layer's choices are exactly range(6)
        self._choices = tuple(len(self.ops) - 1 if ly.first else len(self.ops) for ly in chain)

    @property
    def choices(self) -> tuple[int, ...]:
        return self._choices

    def sandwich_ends(self) -> tuple[Arch, Arch]:
        """Every layer the widest, largest-kernel block; and the shallowest, narrowest network:
        `skip` where a layer may skip, the smallest block where it may not (a stage's first)."""
        big = self.ops.index(f"ir_k{max(KERNELS)}_e{max(EXPANSIONS)}")
        small = self.ops.index(f"ir_k{min(KERNELS)}_e{min(EXPANSIONS)}")
        return (
            (big,) * len(self.chain),
            tuple(small if ly.first else self.skip for ly in self.chain),
        )

    def channels(self, width: int) -> int:
        return max(1, round(width * self.width_mult))

    def config(self) -> dict[str, Any]:
        """The constructor arguments that fix the network's layout (for checkpoint meta)."""
        return {
            "widths": list(self.widths),
            "layers": list(self.layers),
            "strides": list(self.strides),
            "stem_channels": self.stem_channels,
            "head_channels": self.head_channels,
            "width_mult": self.width_mult,
        }

    @property
    def num_decisions(self) -> int:
        return len(self.chain)

    def check(self, arch: Sequence[int]) -> Arch:
        arch = super().check(arch)
        bad = [i for i, a in enumerate(arch) if a == self.skip and self.chain[i].first]
        if bad:
            raise ValueError(
                f"chain: arch {arch!r} puts skip on layer(s) {bad}, the first layer of a stage "
                f"(it changes width or resolution); first layers must take one of "
                f"{', '.join(self.ops[:-1])}"
            )
        return arch

    def parse(self, arch_str: str) -> Arch:
        expected = (
            f"{self.num_decisions} ops joined by '|' (e.g. "
            f"{'|'.join(['ir_k3_e6'] * min(3, self.num_decisions))}...), ops in "
            f"{', '.join(self.ops)}, no skip on a stage's first layer "
            f"{[i for i, ly in enumerate(self.chain) if ly.first]}"
        )
        tokens = arch_str.strip().split("|") if isinstance(arch_str, str) else []
        if len(tokens) != self.num_decisions:
            raise ValueError(
                f"chain: malformed arch string {ascii(arch_str)}; expected {expected}"
            )
        for op in tokens:
            if op not in self.ops:
                raise ValueError(
                    f"chain: unknown op {ascii(op)} in arch string {ascii(arch_str)}; "
                    f"expected {expected}"
                )
        arch = tuple(self.ops.index(op) for op in tokens)
        try:
            return self.check(arch)
        except ValueError as e:
            raise ValueError(
                f"chain: arch string {ascii(arch_str)}: {e}; expected {expected}"
            ) from e

    def to_str(self, arch: Arch) -> str:
        return "|".join(self.ops[a] for a in self.check(arch))

    supernet_target = "supernet.chain_model.ChainSuperNet"
    network_target = "supernet.network.ChainNetwork"
    encoder_target = "predictor.chain_graph.ChainGraphEncoder"

    def iso_key(self, arch: Arch) -> str:
        """The arch string: a chain has no isomorphisms beyond identical strings (skips sit at
        fixed positions, and moving one changes which layer's weights and widths are used)."""
        return self.to_str(arch)

    def cost(
        self, arch: Arch, input_shape: Sequence[int] = (3, 32, 32), num_classes: int = 10
    ) -> Cost:
        """FLOPs (Conv2d and Linear multiply-adds, bias included; BN, ReLU, adds and pooling not
        counted) and params (BN affine included) of the standalone network, as NB201's convention.
        """
        arch = self.check(arch)
        in_ch, h, w = (int(v) for v in input_shape)
        c = self.channels(self.stem_channels)
        flops = in_ch * c * 9 * h * w  # stem conv, stride 1
        params = in_ch * c * 9 + 2 * c
        for layer, a in zip(self.chain, arch):
            if a == self.skip:
                continue
            k, e = parse_op(self.ops[a])
            hidden = layer.c_in * e
            expand = layer.c_in * hidden
            flops += expand * h * w
            h, w = (h - 1) // layer.stride + 1, (w - 1) // layer.stride + 1  # pad k // 2
            flops += (hidden * k * k + hidden * layer.c_out) * h * w
            params += (
                expand + hidden * k * k + hidden * layer.c_out + 2 * (2 * hidden + layer.c_out)
            )
        head = self.channels(self.head_channels)
        c = self.chain[-1].c_out
        flops += c * head * h * w + head * num_classes + num_classes
        params += c * head + 2 * head + head * num_classes + num_classes
        return Cost(flops_M=flops / 1e6, params_M=params / 1e6)

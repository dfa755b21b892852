"""NAS-Bench-201's cell space (see `NB201Space`); the `SearchSpace` contract is `supernet.space_base`."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from supernet.space_base import Arch, Cost, SearchSpace

if TYPE_CHECKING:
    pass


class NB201Space(SearchSpace):
    """NAS-Bench-201's cell space: 6 edges, 5 ops, 15,625 archs.

    The cell has nodes 0..3; edge order is 1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2 (the order of the arch
    string and of the benchmark's `op_i_from_j` columns). The macro skeleton is a 3x3 conv stem with C
    channels, three stages of N cells separated by residual reduction blocks (C -> 2C -> 4C), and a
    BN-ReLU-pool-linear head.

    Args:
        C: channels of the first stage.
        N: cells per stage.
    """

    name = "nb201"
    ops = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
    edges = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))  # (to, from)
    shares_convs = True  # SuperNet(share_convs, share_bn): an edge's two convs as one weight
    _arch_re = re.compile(r"\|(\w+)~0\|\+\|(\w+)~0\|(\w+)~1\|\+\|(\w+)~0\|(\w+)~1\|(\w+)~2\|")
    # Logged every epoch: the benchmark's best, a plain all-conv3x3 cell, a pooling-only cell and a
    # cell whose output is cut off (should stay at chance).
    reference_archs = (
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|",
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|",
        "|avg_pool_3x3~0|+|avg_pool_3x3~0|avg_pool_3x3~1|+|avg_pool_3x3~0|avg_pool_3x3~1|avg_pool_3x3~2|",
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|none~0|none~1|none~2|",
    )

    def sandwich_ends(self) -> tuple[Arch, Arch]:
        """Every edge `nor_conv_3x3` (the most parameters and FLOPs), and every edge
        `skip_connect`: the cheapest cell whose output still depends on its input (an all-`none`
        cell is cut off)."""
        n = self.num_decisions
        return (self.ops.index("nor_conv_3x3"),) * n, (self.ops.index("skip_connect"),) * n

    def __init__(self, C: int = 16, N: int = 5) -> None:
        if C < 1 or N < 1:
            raise ValueError(f"nb201: C={C} and N={N} must both be positive")
        self.C, self.N = C, N

    @property
    def num_decisions(self) -> int:
        return len(self.edges)

    def config(self) -> dict[str, Any]:
        return {"C": self.C, "N": self.N}

    supernet_target = "supernet.model.SuperNet"
    network_target = "supernet.network.NB201Network"
    encoder_target = "predictor.graph.GraphEncoder"

    @property
    def num_blocks(self) -> int:
        """Cells plus reduction blocks in the stack (17 for N=5)."""
        return 3 * self.N + 2

    def parse(self, arch_str: str) -> Arch:
        expected = "|op~0|+|op~0|op~1|+|op~0|op~1|op~2| with op in " + ", ".join(self.ops)
        match = self._arch_re.fullmatch(arch_str.strip()) if isinstance(arch_str, str) else None
        if match is None:
            raise ValueError(
                f"nb201: malformed arch string {ascii(arch_str)}; expected {expected}"
            )
        for op in match.groups():
            if op not in self.ops:
                raise ValueError(
                    f"nb201: unknown op {ascii(op)} in arch string {ascii(arch_str)}; "
                    f"expected {expected}"
                )
        return tuple(self.ops.index(op) for op in match.groups())

    def to_str(self, arch: Arch) -> str:
        arch = self.check(arch)
        nodes, k = [], 0
        for to in (1, 2, 3):
            nodes.append("|" + "|".join(f"{self.ops[arch[k + j]]}~{j}" for j in range(to)) + "|")
            k += to
        return "+".join(nodes)

    def iso_key(self, arch: Arch) -> str:
        """Canonical expression of the output node.

        A node is the sorted sum of its incoming terms: `none`, or any op whose input is a lone zero node, is
        the zero term `#`; `skip_connect` passes
        its input's expression through, any other op wraps it as `(input)@op`. Two archs share a key
        exactly when the benchmark's isomorphism classes put them together (6,466 classes).
        """
        arch = self.check(arch)
        expr = {0: "0"}
        for e, (to, src) in enumerate(self.edges):
            op = self.ops[arch[e]]
            if op == "none" or expr[src] == "#":  # an op on a zero node is zero too
                term = "#"
            elif op == "skip_connect":
                term = expr[src]
            else:
                term = f"({expr[src]})@{op}"
            expr.setdefault(("terms", to), []).append(term)
            if src == to - 1:  # the last edge into `to`: the node is complete
                expr[to] = "+".join(sorted(expr.pop(("terms", to))))
        return expr[3]

    def cost(
        self, arch: Arch, input_shape: Sequence[int] = (3, 32, 32), num_classes: int = 10
    ) -> Cost:
        """FLOPs/params with the NB201 API's conventions (BN affine counted, pooling and BN not in FLOPs)."""
        arch = self.check(arch)
        in_ch, h, w = (int(v) for v in input_shape)
        C = self.C
        kernels = [
            9 if self.ops[a] == "nor_conv_3x3" else 1 for a in arch if "conv" in self.ops[a]
        ]
        flops = in_ch * C * 9 * h * w  # stem conv
        params = in_ch * C * 9 + 2 * C  # stem conv + BN
        for stage in range(3):
            c = C * 2**stage
            if stage > 0:  # residual reduction block c/2 -> c: two 3x3 convs and a 1x1 shortcut
                cin = c // 2
                h, w = (h + 1) // 2, (w + 1) // 2
                flops += (cin * c * 9 + c * c * 9 + cin * c) * h * w
                params += cin * c * 9 + c * c * 9 + cin * c + 4 * c
            flops += self.N * sum(c * c * k for k in kernels) * h * w
            params += self.N * sum(c * c * k + 2 * c for k in kernels)
        params += 2 * 4 * C + 4 * C * num_classes + num_classes  # head BN + linear
        flops += 4 * C * num_classes + num_classes
        return Cost(flops_M=flops / 1e6, params_M=params / 1e6)

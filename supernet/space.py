"""Search spaces: the single source of truth for op names, edges, encodings and costs.

A search space knows its architectures as tuples of op indices (`Arch`), their canonical string, a
canonical index of the project's own, an isomorphism key, and FLOPs / params of the standalone network.
Anything that compares with an external benchmark joins on the arch string, never on an index.
"""

from __future__ import annotations

import itertools
import random
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

Arch = tuple[int, ...]


@dataclass(frozen=True)
class Cost:
    """Cost of one standalone network (FLOPs count Conv2d and Linear multiply-adds, bias included)."""

    flops_M: float
    params_M: float


class SearchSpace(ABC):
    """What every search space provides. Architectures are tuples of op indices, one per decision."""

    name: str
    ops: tuple[str, ...]

    @property
    @abstractmethod
    def num_decisions(self) -> int:
        """How many choices make up one architecture (edges or layers)."""

    @property
    def size(self) -> int:
        return len(self.ops) ** self.num_decisions

    @property
    def enumerable(self) -> bool:
        """Whether `all_archs()` lists the space, so that a whole-space table can be written
        (spaces with a `max_enumerate` refuse above it; the others always list)."""
        return self.size <= getattr(self, "max_enumerate", self.size)

    @abstractmethod
    def parse(self, arch_str: str) -> Arch:
        """Arch string -> arch; raises ValueError naming the string and the expected format."""

    @abstractmethod
    def to_str(self, arch: Arch) -> str:
        """Arch -> canonical arch string."""

    @abstractmethod
    def iso_key(self, arch: Arch) -> str:
        """A key equal for two archs exactly when they compute the same function."""

    @abstractmethod
    def cost(
        self, arch: Arch, input_shape: Sequence[int] = (3, 32, 32), num_classes: int = 10
    ) -> Cost:
        """FLOPs and params of the standalone network for `arch`."""

    @property
    def choices(self) -> tuple[int, ...]:
        """How many ops each decision may take."""
        return (len(self.ops),) * self.num_decisions

    def sample(self, rng: random.Random) -> Arch:
        """A uniformly random valid arch."""
        return tuple(rng.randrange(n) for n in self.choices)

    def config(self) -> dict[str, Any]:
        """The constructor arguments that fix the network's layout (stored in checkpoint meta)."""
        return {}

    def check(self, arch: Sequence[int]) -> Arch:
        """Validates an op-index tuple and returns it as an `Arch`."""
        arch = tuple(int(a) for a in arch)
        if len(arch) != self.num_decisions or not all(0 <= a < len(self.ops) for a in arch):
            raise ValueError(
                f"{self.name}: arch {arch!r} must be {self.num_decisions} op indices in "
                f"[0, {len(self.ops) - 1}] (ops {', '.join(self.ops)})"
            )
        return arch

    def index(self, arch: Arch) -> int:
        """The project's canonical index: base-len(ops) digits, first decision most significant."""
        i = 0
        for a in self.check(arch):
            i = i * len(self.ops) + a
        return i

    def from_index(self, index: int) -> Arch:
        if not 0 <= index < self.size:
            raise ValueError(f"{self.name}: index {index} outside [0, {self.size - 1}]")
        digits = []
        for _ in range(self.num_decisions):
            index, a = divmod(index, len(self.ops))
            digits.append(a)
        return tuple(reversed(digits))

    def all_archs(self) -> Iterator[Arch]:
        """Every architecture, in canonical index order."""
        return itertools.product(range(len(self.ops)), repeat=self.num_decisions)


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
    _arch_re = re.compile(r"\|(\w+)~0\|\+\|(\w+)~0\|(\w+)~1\|\+\|(\w+)~0\|(\w+)~1\|(\w+)~2\|")

    def __init__(self, C: int = 16, N: int = 5) -> None:
        if C < 1 or N < 1:
            raise ValueError(f"nb201: C={C} and N={N} must both be positive")
        self.C, self.N = C, N

    @property
    def num_decisions(self) -> int:
        return len(self.edges)

    def config(self) -> dict[str, Any]:
        return {"C": self.C, "N": self.N}

    @property
    def num_blocks(self) -> int:
        """Cells plus reduction blocks in the stack (17 for N=5)."""
        return 3 * self.N + 2

    def parse(self, arch_str: str) -> Arch:
        expected = "|op~0|+|op~0|op~1|+|op~0|op~1|op~2| with op in " + ", ".join(self.ops)
        match = self._arch_re.fullmatch(arch_str.strip()) if isinstance(arch_str, str) else None
        if match is None:
            raise ValueError(f"nb201: malformed arch string {arch_str!r}; expected {expected}")
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


SPACES: dict[str, type[SearchSpace]] = {"nb201": NB201Space}


def get_space(name: str, **kwargs: Any) -> SearchSpace:
    """Builds a registered search space by name (`nb201`, `chain`)."""
    if name == "chain" and name not in SPACES:  # imported late: chain_space imports this module
        from supernet.chain_space import ChainSpace

        SPACES[name] = ChainSpace
    if name not in SPACES:
        raise ValueError(f"unknown search space {name!r}; expected one of ['chain', 'nb201']")
    return SPACES[name](**kwargs)

"""What a search space is: the `SearchSpace` type every space derives from, `Arch` and `Cost`.

A space is a class, and it owns everything that differs between spaces, so that no other code asks
for a space's name or probes it with `hasattr`:

- its architectures: op names, `choices` per decision, arch <-> string <-> index, isomorphism key,
  FLOPs / params (`cost`), `sample`, `all_archs` (refused above `max_enumerate`: `enumerable`);
- its layout for checkpoints (`config()`, plain data: `get_space(name, **config)` rebuilds it);
- its parts: `supernet_class()` / `build_supernet(...)`, `network_class()` (the standalone
  network of one arch, for export and retraining), `graph_encoder(...)` (op-index tensors -> PyG
  batches for the predictor) and the GCN readout that suits its graphs (`graph_pool`);
- its defaults: `reference_archs` (arch strings logged every epoch), `has_latency_table` and
  `shares_convs` (its supernet has NB201's shared-conv layouts).

The parts live in modules that import the space (the supernets, `supernet.network`, and the
predictor's graph encoders in the layer above), so a space names each part as `module.attr`
(`supernet_target`, `network_target`, `encoder_target`) and `locate` imports it on first use: no
space module imports a part, the import graph has no cycle, and `supernet` never imports
`predictor` (it names the encoder the predictor will build). Adding a space is its own files plus
one line in the registry (`supernet.space.SPACES`); `tests/test_toy_space.py` shows the minimum.
"""

from __future__ import annotations

import importlib
import itertools
import math
import random
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

if TYPE_CHECKING:
    import torch
    from torch import nn
    from torch_geometric.data import Batch

Arch = tuple[int, ...]

# Spaces larger than this are sampled and searched, never listed (the 20-layer chain: ~3e16 archs).
ENUMERATE_MAX = 1_000_000


@dataclass(frozen=True)
class Cost:
    """Cost of one standalone network (FLOPs count Conv2d and Linear multiply-adds, bias included)."""

    flops_M: float
    params_M: float


class GraphEncoder(Protocol):
    """What `GCNPredictor` needs of a space's graph encoder (`SearchSpace.graph_encoder`)."""

    in_channels: int  # node feature width

    def batch(self, ops: torch.Tensor, u: torch.Tensor | None = None) -> Batch:
        """Shapes: ops `(B, num_decisions)` long, u `(B, F)` -> x `(B * nodes, in_channels)`."""
        ...


def locate(target: str, what: str) -> Any:
    """The object `target` names (`package.module.attr`), importing its module.

    Raises:
        ValueError: naming `what` when the target is empty or does not exist.
    """
    module, _, attr = target.rpartition(".")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError, ValueError) as err:
        raise ValueError(
            f"{what}={target!r}: expected `module.attr` of an importable object ({err})"
        ) from None


class SearchSpace(ABC):
    """What every search space provides. Architectures are tuples of op indices, one per decision.

    Decision `i` takes one of the first `choices[i]` ops; the canonical index is mixed radix over
    `choices`, first decision most significant.
    """

    name: ClassVar[str]
    ops: ClassVar[tuple[str, ...]]
    reference_archs: ClassVar[tuple[str, ...]] = ()  # logged every epoch; () -> seeded samples
    graph_pool: ClassVar[str] = "output"  # `GCNPredictor(pool="auto")` readout for these graphs
    has_latency_table: ClassVar[bool] = False  # `supernet.latency.measure_table` can time it
    shares_convs: ClassVar[bool] = False  # its supernet takes `share_convs`, `share_bn`
    max_enumerate: int = ENUMERATE_MAX

    @property
    @abstractmethod
    def num_decisions(self) -> int:
        """How many choices make up one architecture (edges or layers)."""

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

    # Its parts, named `module.attr` and imported on first use (`locate`): each part's module
    # imports the space, so a space that imported its parts would close a cycle.
    supernet_target: str = ""  # the supernet class
    network_target: str = ""  # the standalone network of one arch ("": none)
    encoder_target: str = ""  # the predictor's graph encoder class

    def supernet_class(self) -> type[nn.Module]:
        """The supernet: built as `cls(space, num_classes, in_channels, affine,
        track_running_stats)`, with `forward(x, arch)` giving logits `(B, num_classes)`, and
        `stem`, `classifier`, `block_index()` as `supernet.model.SuperNet` has them."""
        return locate(self.supernet_target, f"space {self.name!r}: supernet_target")

    def graph_encoder(self, prune: bool = True, undirected: bool = False) -> GraphEncoder:
        """The predictor's encoder of this space's archs as graphs (`prune`: drop dead edges,
        where the space has them): `encoder_target(space, prune=, undirected=)`."""
        cls = locate(self.encoder_target, f"space {self.name!r}: encoder_target")
        return cls(self, prune=prune, undirected=undirected)

    def build_supernet(self, num_classes: int, in_channels: int = 3, **options: bool) -> nn.Module:
        """The space's supernet, with the supernet class's keyword `options` (`affine`,
        `track_running_stats`, `share_convs`, `share_bn`: `supernet.model.SuperNet`'s). The weight
        layouts `share_convs` / `share_bn` exist only where `shares_convs` (NB201's cells); the
        other supernets ignore them."""
        if not self.shares_convs:
            options = {k: v for k, v in options.items() if k not in ("share_convs", "share_bn")}
        return self.supernet_class()(self, num_classes, in_channels, **options)

    def network_class(self) -> type[nn.Module]:
        """The standalone network of one arch (`supernet.network.StandaloneNetwork`)."""
        if not self.network_target:
            raise ValueError(f"no standalone network for space {self.name!r}")
        return locate(self.network_target, f"space {self.name!r}: network_target")

    def default_reference_archs(self, count: int = 4, seed: int = 0) -> list[Arch]:
        """The archs logged every epoch without a list: `reference_archs`, or `count` seeded
        samples for a space that names none."""
        if self.reference_archs:
            return [self.parse(s) for s in self.reference_archs]
        rng = random.Random(seed)
        return [self.sample(rng) for _ in range(count)]

    def sandwich_ends(self) -> tuple[Arch, Arch]:
        """The largest and the smallest arch of the space, which the sandwich rule trains in every
        step (`supernet.sampler.SandwichSampler`).

        Raises:
            ValueError: the space names no such pair.
        """
        raise ValueError(
            f"space {self.name!r} names no largest and smallest arch for the sandwich rule"
        )

    @property
    def choices(self) -> tuple[int, ...]:
        """How many ops each decision may take."""
        return (len(self.ops),) * self.num_decisions

    @property
    def size(self) -> int:
        return math.prod(self.choices)

    @property
    def enumerable(self) -> bool:
        """Whether `all_archs()` lists the space, so that a whole-space table can be written."""
        return self.size <= self.max_enumerate

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
        """The project's canonical index (mixed radix over `choices`)."""
        i = 0
        for a, n in zip(self.check(arch), self.choices):
            i = i * n + a
        return i

    def from_index(self, index: int) -> Arch:
        if not 0 <= index < self.size:
            raise ValueError(f"{self.name}: index {index} outside [0, {self.size - 1}]")
        digits = []
        for n in reversed(self.choices):
            index, a = divmod(index, n)
            digits.append(a)
        return tuple(reversed(digits))

    def all_archs(self) -> Iterator[Arch]:
        """Every architecture, in canonical index order; refuses spaces above `max_enumerate`."""
        if not self.enumerable:
            raise ValueError(
                f"{self.name}: {self.size:.3g} archs are too many to enumerate (max_enumerate="
                f"{self.max_enumerate}); search the space (predictor/search.py) instead"
            )
        return itertools.product(*(range(n) for n in self.choices))

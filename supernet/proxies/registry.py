"""Zero-shot proxies by name, and the loop that scores many archs with one network.

A proxy is `proxy(net, arch, x, y, ctx) -> score` (higher is better). It scores the path `arch` of a
freshly initialised `SuperNet` on one fixed batch. Scores that need the device come back as 0-dim
tensors left on it; `score_archs` reads them back once per chunk, so a GPU never waits per arch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import torch

from supernet.model import SuperNet
from supernet.space import Arch, NB201Space


@dataclass
class ProxyContext:
    """What proxies need beside the net and the batch, and what they keep between archs.

    Args:
        space: the search space (for costs).
        input_shape: `(C, H, W)` of one image.
        num_classes: classifier outputs.
        cache: per-net helpers built on first use (ReLU recorders, SynFlow's float64 copy).
        counters: device-side counts, e.g. `wrcor/ridge`: archs whose K needed the ridge.
        bf16: the passes of the proxies registered with `bf16=True` (WRCor) under bf16 autocast.
            WRCor's ranking stays that of the fp32 definition (Spearman 0.99999 over 200 CIFAR
            archs at C=8 N=1, BENCHMARKS.md) and ran 1.24x faster on a busy 2-core CPU. Off here;
            the zero-shot stage turns it on where the device computes bf16 natively.
    """

    space: NB201Space
    input_shape: tuple[int, int, int]
    num_classes: int
    cache: dict = field(default_factory=dict)
    counters: dict[str, torch.Tensor] = field(default_factory=dict)
    bf16: bool = False

    def count(self, name: str, flag: torch.Tensor) -> None:
        """Adds a bool/int tensor to counter `name` without a device sync."""
        self.counters[name] = self.counters.get(name, 0) + flag.to(torch.int64)

    def counts(self) -> dict[str, int]:
        return {k: int(v) for k, v in self.counters.items()}


Proxy = Callable[
    [SuperNet, Arch, torch.Tensor, torch.Tensor, ProxyContext], "torch.Tensor | float"
]
PROXIES: dict[str, Proxy] = {}
BF16_PROXIES: set[str] = set()  # the proxies whose scores depend on `ProxyContext.bf16`


def register_proxy(name: str, *, bf16: bool = False) -> Callable[[Proxy], Proxy]:
    """Decorator adding a proxy under `name`; a name taken already raises ValueError. `bf16`: the
    proxy reads `ctx.bf16`, so a file of its scores records it."""

    def add(fn: Proxy) -> Proxy:
        if name in PROXIES:
            raise ValueError(
                f"proxy {name!r} is registered already (by {PROXIES[name].__module__})"
            )
        PROXIES[name] = fn
        if bf16:
            BF16_PROXIES.add(name)
        return fn

    return add


def reads_bf16(names: Iterable[str]) -> bool:
    """Whether any of the proxies `names` computes differently under `ProxyContext.bf16`."""
    return any(n in BF16_PROXIES for n in names)


def get_proxy(name: str) -> Proxy:
    if name not in PROXIES:
        raise ValueError(f"unknown proxy {name!r}; expected one of {sorted(PROXIES)} (or vote)")
    return PROXIES[name]


def score_archs(
    net: SuperNet,
    archs: Iterable[Arch],
    x: torch.Tensor,
    y: torch.Tensor,
    names: Sequence[str],
    ctx: ProxyContext,
    chunk: int = 16,
) -> Iterator[list[tuple[Arch, dict[str, float]]]]:
    """Scores archs with the proxies `names`, yielding one list of `(arch, {name: score})` per chunk.

    Shapes:
        x `(B, C, H, W)` float, normalised, on the net's device; y `(B,)` int64 on the same device.
    """
    fns = [(n, get_proxy(n)) for n in names]
    pending: list[tuple[Arch, list]] = []
    for arch in archs:
        pending.append((arch, [fn(net, arch, x, y, ctx) for _, fn in fns]))
        if len(pending) >= chunk:
            yield _read_back(pending, names)
            pending = []
    if pending:
        yield _read_back(pending, names)


def mean_scores(
    scorers: Sequence[tuple[SuperNet, torch.Tensor, torch.Tensor]],
    archs: Sequence[Arch],
    names: Sequence[str],
    ctx: ProxyContext,
    chunk: int = 16,
) -> Iterator[list[tuple[Arch, dict[str, float]]]]:
    """`score_archs` with several `(net, x, y)` scorers (independent initialisations and batches),
    each score the mean of theirs; chunks come out as `score_archs`'s do, so rows can be written as
    produced. A proxy of one initialisation ranks with a seed-to-seed spread; the mean of a few has
    less of it (BENCHMARKS.md: MeCo's Kendall 0.736 +- 0.005 at one seed, 0.747 for the mean of 3)."""
    runs = [score_archs(net, archs, x, y, names, ctx, chunk) for net, x, y in scorers]
    for chunks in zip(*runs, strict=True):
        yield [
            (arch, {n: sum(c[i][1][n] for c in chunks) / len(chunks) for n in names})
            for i, (arch, _) in enumerate(chunks[0])
        ]


def _read_back(
    pending: list[tuple[Arch, list]], names: Sequence[str]
) -> list[tuple[Arch, dict[str, float]]]:
    cols = []
    for j in range(len(names)):
        vals = [p[1][j] for p in pending]
        if isinstance(vals[0], torch.Tensor):
            cols.append(
                torch.stack([v.to(torch.float64) for v in vals]).cpu().tolist()
            )  # one sync
        else:
            cols.append([float(v) for v in vals])
    return [
        (arch, {n: cols[j][i] for j, n in enumerate(names)}) for i, (arch, _) in enumerate(pending)
    ]

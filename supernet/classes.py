"""Which archs compute the same function: live edges, pruned forms and classes of a space.

A cell edge is *live* when its op is not `none` and it lies on an input -> output path of non-`none`
ops (the same pruning as the predictor's graph encoder). A dead op changes nothing the cell
computes, so two archs that differ only on dead edges are one function (one *class*: isomorphic
once dead ops are pruned); their dead convolutions add FLOPs that buy nothing. An arch has a
`live_conv` when a parametric op lies on a live edge: a cell without one is a fixed function of its
input. Spaces without cell `edges` (the chain) have no dead decisions: every layer is live, each
arch is its own class.

Used by the standalone network (only live ops are built), the zero-shot stage (`archs=classes`),
the table's fusion and the query's one-row-per-class top.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from supernet.space import Arch, SearchSpace

# ops without weights: any other op (nor_conv_*, ir_k*_e*) is parametric
WEIGHT_FREE_OPS = frozenset({"none", "skip_connect", "avg_pool_3x3", "max_pool_3x3", "skip"})


def live_edges(space: SearchSpace, arch: Arch) -> tuple[bool, ...]:
    """Per decision: whether its op carries data from the cell input to the cell output.

    Spaces without `edges` (a chain of layers) return all True.
    """
    arch = space.check(arch)
    edges = getattr(space, "edges", None)
    if edges is None:
        return (True,) * len(arch)
    none = space.ops.index("none") if "none" in space.ops else -1
    on = [a != none for a in arch]
    nodes = sorted({n for e in edges for n in e})
    fwd = {nodes[0]}  # carries something from the input; edges only go to higher nodes
    for node in nodes[1:]:
        if any(on[e] and src in fwd for e, (to, src) in enumerate(edges) if to == node):
            fwd.add(node)
    bwd = {nodes[-1]}  # reaches the output
    for node in reversed(nodes[:-1]):
        if any(on[e] and to in bwd for e, (to, src) in enumerate(edges) if src == node):
            bwd.add(node)
    return tuple(o and src in fwd and to in bwd for o, (to, src) in zip(on, edges))


def prune_dead(space: SearchSpace, arch: Arch) -> Arch:
    """The arch with every dead op replaced by `none`: the same function, the cheapest member of its
    class. Spaces without `none` come back unchanged."""
    if "none" not in space.ops:
        return space.check(arch)
    none = space.ops.index("none")
    return tuple(a if live else none for a, live in zip(arch, live_edges(space, arch)))


def live_conv(space: SearchSpace, arch: Arch) -> bool:
    """Whether a parametric op (not in `WEIGHT_FREE_OPS`) sits on a live edge."""
    return any(
        live and space.ops[a] not in WEIGHT_FREE_OPS
        for a, live in zip(space.check(arch), live_edges(space, arch))
    )


def class_key(space: SearchSpace, arch: Arch) -> str:
    """The isomorphism key of the pruned arch: archs that differ only on dead edges share it."""
    return space.iso_key(prune_dead(space, arch))


# live_index / class_index per cell structure: each walks every arch of the space in Python (about
# 1.4 s for NB201's 15,625), and one pipeline run asks for them tens of times
_INDEXES: dict[tuple, np.ndarray] = {}


def _structure(space: SearchSpace, what: str) -> tuple:
    """What `what`'s answer depends on: the space's kind, ops and cell edges (not C or N)."""
    edges = getattr(space, "edges", None)
    return (
        what,
        type(space).__qualname__,
        tuple(space.ops),
        None if edges is None else tuple(edges),
    )


def _cached(space: SearchSpace, what: str, build: Callable[[], np.ndarray]) -> np.ndarray:
    """`build()` the first time this structure asks for `what`, a copy of that answer each time."""
    key = _structure(space, what)
    if key not in _INDEXES:
        _INDEXES[key] = build()
    return _INDEXES[key].copy()  # a caller may write to its array


def live_index(space: SearchSpace) -> np.ndarray:
    """For every arch (canonical index order) the index of its pruned form (dead ops -> `none`).

    Shapes:
        `(space.size,)` int64.
    """
    return _cached(
        space,
        "live",
        lambda: np.array(
            [space.index(prune_dead(space, a)) for a in space.all_archs()], dtype=np.int64
        ),
    )


def class_index(space: SearchSpace) -> np.ndarray:
    """For every arch the smallest index of its class (same function: isomorphic once dead ops
    are pruned). Spaces without cell edges: every arch is its own class.

    Shapes:
        `(space.size,)` int64.
    """

    def build() -> np.ndarray:
        first: dict[str, int] = {}
        out = np.empty(space.size, dtype=np.int64)
        for i, arch in enumerate(space.all_archs()):
            out[i] = first.setdefault(class_key(space, arch), i)
        return out

    return _cached(space, "class", build)


def class_representatives(space: SearchSpace) -> list[Arch]:
    """One arch per class, pruned (its dead ops `none`): the least work that scores every class
    (NB201: 6,285 archs instead of 15,625), for `zeroshot.py archs=classes`."""
    return [prune_dead(space, space.from_index(int(i))) for i in np.unique(class_index(space))]

"""The top of a lookup table as a user should see it: one row per isomorphism class, dead edges dead.

A cell edge is *live* when its op is not `none` and it lies on an input -> output path of non-`none`
ops (the same pruning as `predictor.graph.edge_mask`). A dead op changes nothing the cell computes,
so two archs that differ only on dead edges are one function; the table can rank them apart (its
predictor sees two graphs) and their dead convolutions add FLOPs that buy nothing. Here each class
is shown once, by its cheapest member, with the number of archs in the class.

An arch has a `live_conv` when a parametric op (a convolution) lies on a live edge: a cell without
one is a fixed function of its input (a pooling, the input itself, or zero) and is ~never the
answer. `sanity_warnings` says so when such cells fill the top.

Spaces without cell `edges` (the chain) have no dead decisions: every layer is live, each arch is its
own class.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from supernet.classes import live_conv, live_edges
from supernet.space import Arch, SearchSpace


@dataclass(frozen=True)
class ClassRow:
    """One isomorphism class in a ranked table.

    Attributes:
        index: row of the representative (the cheapest member by FLOPs, then params, then the
            fewest dead ops, then the best score).
        best: row of the best-scoring eligible member (the class ranks there).
        size: members in the table.
        dead: dead ops (not `none`, off every live path) in the representative; 0 whenever its
            pruned form is in the table.
        live_conv: whether the representative has a convolution on a live path.
    """

    index: int
    best: int
    size: int
    dead: int
    live_conv: bool


def _class_keys(space: SearchSpace, archs: Sequence[Arch]) -> tuple[list[str], list[int]]:
    """`class_key` and the number of dead ops of every arch, with the liveness computed once."""
    none = space.ops.index("none") if "none" in space.ops else -1
    keys, dead = [], []
    for arch in archs:
        live = live_edges(space, arch)
        pruned = tuple(a if x else none for a, x in zip(arch, live)) if none >= 0 else arch
        keys.append(space.iso_key(pruned))
        dead.append(sum(a != none and not x for a, x in zip(arch, live)))
    return keys, dead


def dedup_classes(
    space: SearchSpace,
    archs: Sequence[Arch],
    score: np.ndarray,
    flops: np.ndarray,
    params: np.ndarray,
    eligible: np.ndarray | None = None,
    top_k: int = 0,
) -> list[ClassRow]:
    """Classes of `archs` best score first, each shown by its cheapest eligible member.

    Args:
        archs: every row's arch (the class size counts all of them).
        score: higher is better.
        eligible: rows that meet the budgets (None: all); a class with no eligible member is left out.
        top_k: how many classes (0: all).

    Shapes:
        archs `n`, score / flops / params / eligible `(n,)`.
    """
    eligible = np.ones(len(archs), dtype=bool) if eligible is None else np.asarray(eligible, bool)
    keys, dead = _class_keys(space, archs)
    size = Counter(keys)
    members: dict[str, list[int]] = {}
    for i in np.argsort(-np.asarray(score, dtype=np.float64), kind="stable"):
        if eligible[i]:
            members.setdefault(keys[i], []).append(int(i))
    rows = []
    for k, idx in members.items():  # insertion order: by each class's best eligible score
        rep = min(idx, key=lambda i: (flops[i], params[i], dead[i], -score[i]))
        rows.append(ClassRow(rep, idx[0], size[k], dead[rep], live_conv(space, archs[rep])))
        if top_k and len(rows) >= top_k:
            break
    return rows


def near_chance(ref_acc: Mapping[str, float], num_classes: int, fraction: float = 0.25) -> bool:
    """Whether the median reference arch's accuracy (percent) is within `fraction` of the way from
    chance to 100% (32.5% for 10 classes). The median, because the reference set holds a cut-off
    cell that stays at chance by design; on digits a trained supernet puts it near 90%, while the
    30-epoch default of the first build sat at 15-21% for its conv cells (38% pooling-only)."""
    if not ref_acc:
        return False
    chance = 100.0 / num_classes
    return statistics.median(ref_acc.values()) < chance + fraction * (100.0 - chance)


def sanity_warnings(
    ref_acc: Mapping[str, float] | None,
    num_classes: int,
    top: Sequence[Mapping[str, Any]],
) -> list[str]:
    """Plain-language warnings about a run's answer (empty when nothing looks wrong).

    Args:
        ref_acc: the supernet's reference archs' held-out accuracy (percent), by name; None when
            the run has no training stage.
        top: the shown top rows, each with a `live_conv` key.
    """
    warnings = []
    if ref_acc is not None and near_chance(ref_acc, num_classes):
        accs = ", ".join(f"{k} {v:.1f}%" for k, v in ref_acc.items())
        warnings.append(
            f"the supernet's reference archs sit near chance ({100.0 / num_classes:.0f}% for "
            f"{num_classes} classes): {accs}. Subnet accuracies measured with its weights are "
            "noise, and so is the ranking: train the supernet longer or check the data."
        )
    flagged = [r for r in top if not r.get("live_conv", True)]
    if top and 2 * len(flagged) >= len(top):
        warnings.append(
            f"{len(flagged)} of the top {len(top)} archs have no convolution on a live "
            "input-to-output path (their output is a pooling, the input or zero): the ranking "
            "favours parameter-free cells, which points to a supernet too weakly trained to rank."
        )
    return warnings

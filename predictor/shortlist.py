"""The rows a query shows: the best of a `Scored` within budgets, one per isomorphism class
(`predictor.topk.dedup_classes`) or one per row, with the Pareto front of score against FLOPs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from predictor.budgets import pareto_front, within_budgets
from predictor.scored import Scored
from predictor.topk import dedup_classes
from supernet.classes import live_conv
from supernet.space import SearchSpace


@dataclass(frozen=True)
class Shortlist:
    """The best rows of a `Scored` within budgets, as a query shows them.

    Attributes:
        top: one dict per shown row, best first: `arch`, the score column, `flops_M`, `params_M`
            (`latency_ms`), with dedup `class_size` and `dead_ops`, and `live_conv`.
        best: the row of the answer (the first shown row's arch).
        within: `(n,)` bool, the rows that meet every budget.
        front: the Pareto front of score against FLOPs over all rows, by FLOPs.
    """

    top: list[dict[str, Any]]
    best: int
    within: np.ndarray
    front: np.ndarray


def shortlist(
    space: SearchSpace,
    scored: Scored,
    budgets: Mapping[str, float],
    top_k: int,
    dedup: bool = True,
) -> Shortlist:
    """The `top_k` best rows within `budgets`: with `dedup` one per isomorphism class (which asks
    every row's arch), ranked at its best member's score and shown by its cheapest member.

    Raises:
        DataError: a budget on a column the rows lack; BudgetError: no row meets the budgets.
    """
    ok = within_budgets(scored.costs, budgets, scored.source, scored.header)
    rank, flops = scored.ranking, scored.costs["flops_M"]
    if dedup:
        classes = dedup_classes(
            space, scored.archs, rank, flops, scored.costs["params_M"], ok, top_k
        )
        shown = [(c.index, c.best, {"class_size": c.size, "dead_ops": c.dead}) for c in classes]
    else:
        idx = np.flatnonzero(ok)
        shown = [(int(i), int(i), {}) for i in idx[np.argsort(-rank[idx], kind="stable")][:top_k]]
    top = [_top_row(space, scored, *row) for row in shown]
    return Shortlist(top, shown[0][0], ok, pareto_front(rank, flops))


def _top_row(space: SearchSpace, scored: Scored, i: int, ranked_by: int, extra: dict) -> dict:
    """Row `i` as shown: its arch and costs, the score of row `ranked_by` (its class's best)."""
    row = {
        "arch": scored.archs.string(i),
        scored.score_column: float(scored.score[ranked_by]),
        "flops_M": float(scored.costs["flops_M"][i]),
        "params_M": float(scored.costs["params_M"][i]),
    }
    if "latency_ms" in scored.costs:
        row["latency_ms"] = float(scored.costs["latency_ms"][i])
    return {**row, **extra, "live_conv": live_conv(space, scored.archs[i])}

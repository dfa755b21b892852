"""Budgets on an arch's cost (FLOPs, params, latency) and the Pareto front of score against cost.

A budget is a finite upper limit on one cost column (`BUDGETS`: the config key -> the column it
limits); `None` means no budget. A table that no arch of meets every budget is a `BudgetError`, a
`DataError` (bad input: exit code 2 like any other), whose message says what each budget would need.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from supernet.latency import LatencyTable
from supernet.space import Arch, SearchSpace
from supernet.utils import DataError

BUDGETS = {"max_flops_M": "flops_M", "max_params_M": "params_M", "max_latency_ms": "latency_ms"}


class BudgetError(DataError):
    """No arch of the table meets the budgets; the message says which and what is available (bad
    input: exit code 2 like any other)."""


def check_budget(key: str, value: object) -> float:
    """A budget as a finite number; else a DataError naming it."""
    try:
        limit = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        limit = float("nan")
    if not np.isfinite(limit) or isinstance(value, bool):
        raise DataError(f"{key}={value!r}: expected a finite number (or null: no budget)")
    return limit


def read_budgets(values: Mapping[str, object]) -> dict[str, float]:
    """The budgets set in `values` (keys of `BUDGETS`, None: no budget), checked, in `BUDGETS`
    order."""
    return {k: check_budget(k, values[k]) for k in BUDGETS if values.get(k) is not None}


def within_budgets(
    costs: Mapping[str, np.ndarray],
    budgets: Mapping[str, float],
    source: str,
    header: Sequence[str] = (),
) -> np.ndarray:
    """Which rows meet every budget.

    Args:
        costs: column name (`flops_M`, ...) -> `(n,)` values.
        budgets: `read_budgets`' result.
        source: the table's name, for the messages; `header`: its columns.

    Raises:
        DataError: a budget on a column the table lacks.
        BudgetError: when no row meets every budget.

    Shapes:
        each cost `(n,)` -> mask `(n,)` bool.
    """
    n = len(next(iter(costs.values())))
    ok = np.ones(n, dtype=bool)
    for key, limit in budgets.items():
        col = BUDGETS[key]
        if col not in costs:
            raise DataError(
                f"{source}:1: {key}={limit:g} needs a {col!r} column; header is {header}"
            )
        ok &= costs[col] <= limit
    if not ok.any():
        lines = [
            f"{k}={v:g}: smallest {BUDGETS[k]} in the table is {costs[BUDGETS[k]].min():g}"
            + (" (nothing meets it)" if (costs[BUDGETS[k]] > v).all() else "")
            for k, v in budgets.items()
        ]
        raise BudgetError(f"no arch in {source} meets every budget:\n  " + "\n  ".join(lines))
    return ok


def pareto_front(score: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """Indices of the archs no other arch beats on both (higher score, lower cost), by cost.

    Shapes:
        score `(n,)`, cost `(n,)` -> `(k,)`.
    """
    order = np.lexsort((-score, cost))  # by cost, then best score first
    front, best = [], -np.inf
    for i in order:
        if score[i] > best:
            front.append(i)
            best = score[i]
    return np.array(front, dtype=np.int64)


class LatencyBudget:
    """`arch -> latency_ms <= max_ms` by a latency table; remembers the smallest latency seen, for
    the search's no-arch-fits error."""

    def __init__(self, space: SearchSpace, table: LatencyTable, max_ms: float) -> None:
        self.space, self.table, self.max_ms = space, table, max_ms
        self.smallest = float("inf")

    def __call__(self, arch: Arch) -> bool:
        ms = self.table.arch_ms(self.space, arch)
        self.smallest = min(self.smallest, ms)
        return ms <= self.max_ms

    def __repr__(self) -> str:
        return f"max_latency_ms={self.max_ms:g} (smallest seen {self.smallest:.4g} ms)"


def read_latency_table(
    path: str | Path, space: SearchSpace, input_shape: Sequence[int] | None = None
) -> LatencyTable:
    """The latency table of `latency_table=path`, checked against the space (and, when given, the
    input shape the costs are for) before anything is fitted, searched or written.

    Raises:
        DataError: naming the file and what does not match.
    """
    try:
        table = LatencyTable.load(path)
    except (FileNotFoundError, TypeError, ValueError, KeyError) as err:
        raise DataError(
            f"latency_table={path}: not a latency table of scripts/latency.py "
            f"({type(err).__name__}: {err})"
        ) from None
    if table.space != space.name or len(table.op_ms) != space.num_decisions:
        raise DataError(
            f"latency_table={path}: measured for space {table.space!r} with "
            f"{len(table.op_ms)} layers; this space is {space.name!r} with {space.num_decisions}"
        )
    if input_shape is not None and list(table.input_shape) != list(input_shape):
        raise DataError(
            f"latency_table={path}: measured for input shape {list(table.input_shape)}; this "
            f"run's input_shape is {list(input_shape)}"
        )
    return table

"""Scored archs, one row each: what a query ranks, filters by budgets and shows.

The rows come from a file (a lookup table of `nas-fit`, a zero-shot CSV: `read_scored`) or from a
search in memory (`scored_from_search`). Either way an arch is a string only at the file boundary:
`ArchRows` keeps each row's string as the file has it and parses a row the first time its arch is
asked for, so a query that shows ten of 15,625 rows parses what it needs (every row, when dedup
asks each row's class); a search hands its tuples over and nothing is parsed.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from predictor.budgets import BUDGETS
from predictor.io import TABLE_COLUMNS, read_table
from supernet.latency import LatencyTable
from supernet.results import parse_arch
from supernet.space import Arch, SearchSpace
from supernet.utils import DataError

COST_COLUMNS = ("flops_M", "params_M")
SEARCH_COLUMNS = ("rank", "arch", "score", "flops_M", "params_M")


class ArchRows(Sequence[Arch]):
    """The archs of a table's rows, each parsed on first access and kept.

    Args:
        strings: each row's arch string, as the file has it (shown and exported verbatim).
        source: the file, for the message naming a bad row (its line: row + 2, after the header).
        archs: the rows' archs when already known (a search's): nothing is parsed.
    """

    def __init__(
        self,
        space: SearchSpace,
        strings: Sequence[str],
        source: str = "",
        archs: Sequence[Arch] | None = None,
    ) -> None:
        self.space, self.strings, self.source = space, strings, source
        self._archs: list[Arch | None] = (
            list(archs) if archs is not None else [None] * len(strings)
        )
        if len(self._archs) != len(strings):
            raise ValueError(f"{len(strings)} strings for {len(self._archs)} archs")

    def __len__(self) -> int:
        return len(self.strings)

    def __getitem__(self, i: int) -> Arch:  # type: ignore[override]
        arch = self._archs[i]
        if arch is None:
            arch = self._archs[i] = parse_arch(self.source, i + 2, self.strings[i], self.space)
        return arch

    def __iter__(self) -> Iterator[Arch]:
        return (self[i] for i in range(len(self)))

    def string(self, i: int) -> str:
        """Row `i`'s arch as the file writes it."""
        return str(self.strings[i])


@dataclass
class Scored:
    """Scored archs, one row each.

    Attributes:
        source: where the rows come from (messages, the plot's title, the export's `table`).
        header: the source's columns (for the message of a budget on a missing one).
        score: the `score_column` as given; `higher_is_better` says which way it ranks.
        costs: `flops_M`, `params_M`, and `latency_ms` where known.

    Shapes:
        archs `n`, score `(n,)`, each cost `(n,)`.
    """

    source: str
    header: list[str]
    archs: ArchRows
    score: np.ndarray
    costs: dict[str, np.ndarray]
    score_column: str = "score"
    higher_is_better: bool = True

    @property
    def ranking(self) -> np.ndarray:
        """The score, higher is better. Shapes: `(n,)`."""
        return self.score if self.higher_is_better else -self.score


def read_scored(
    path: str,
    space: SearchSpace,
    score_column: str = "score",
    higher_is_better: bool = True,
    input_shape: Sequence[int] = (3, 32, 32),
    num_classes: int = 10,
) -> Scored:
    """A table's rows: its costs, or, for a table without them (zero-shot), each arch's from the
    space (which parses every row).

    Raises:
        DataError: an unreadable table, or a lookup table of `nas-fit` without one row per arch.
    """
    header, cols = read_table(path, score_column, numeric=list(BUDGETS.values()))
    n = len(cols["arch"])
    if header[: len(TABLE_COLUMNS)] == list(TABLE_COLUMNS) and n != space.size:
        raise DataError(
            f"{path}: a table of scripts/fit.py has one row per arch of the space, "
            f"{space.size}; this one has {n} (cut off, or made for another space): write it again"
        )
    archs = ArchRows(space, cols["arch"], str(path))
    costs = {c: cols[c] for c in BUDGETS.values() if c in cols}
    if any(c not in costs for c in COST_COLUMNS):
        counted = [space.cost(a, tuple(input_shape), num_classes) for a in archs]
        for c in COST_COLUMNS:
            costs.setdefault(c, np.array([getattr(x, c) for x in counted]))
    costs = {c: costs[c] for c in BUDGETS.values() if c in costs}
    return Scored(
        str(path), header, archs, cols[score_column], costs, score_column, higher_is_better
    )


def scored_from_search(
    space: SearchSpace,
    results: Sequence[tuple[Arch, float]],
    source: str,
    input_shape: Sequence[int],
    num_classes: int,
    latency: LatencyTable | None = None,
) -> Scored:
    """A search's results (best first) as rows: each arch's costs (and latency) from the space.
    The score is kept as `search_csv_rows` writes it (6 significant digits), so what a query shows
    and exports equals the file.
    """
    archs = [a for a, _ in results]
    counted = [space.cost(a, tuple(input_shape), num_classes) for a in archs]
    costs = {c: np.array([getattr(x, c) for x in counted]) for c in COST_COLUMNS}
    if latency is not None:
        costs["latency_ms"] = np.array([latency.arch_ms(space, a) for a in archs])
    header = [*SEARCH_COLUMNS, *(["latency_ms"] if latency is not None else [])]
    rows = ArchRows(space, [space.to_str(a) for a in archs], source, archs)
    score = np.array([float(f"{s:.6g}") for _, s in results])
    return Scored(source, header, rows, score, costs)


def search_csv_rows(scored: Scored) -> list[list[object]]:
    """`scored_from_search`'s rows for the CSV (`scored.header`), rank first. Costs at full
    precision (repr): the search pushes right up against the budgets, and a reader re-checking
    them must see the values that were checked.
    """
    cols = [scored.costs[c] for c in scored.header[3:]]
    return [
        [
            i + 1,
            scored.archs.string(i),
            f"{scored.score[i]:.6g}",
            *(repr(float(c[i])) for c in cols),
        ]
        for i in range(len(scored.archs))
    ]

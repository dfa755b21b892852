"""predictor.scored and predictor.shortlist: rows parsed only when asked, a search's rows in memory
equal to its CSV, and the shown rows of a table under budgets."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import numpy as np
import pytest

from predictor.budgets import BudgetError
from predictor.scored import (
    ArchRows,
    read_scored,
    scored_from_search,
    search_csv_rows,
)
from predictor.shortlist import shortlist
from supernet.chain_space import ChainSpace
from supernet.space import NB201Space
from supernet.utils import DataError

SPACE = NB201Space()


class CountingSpace(NB201Space):
    """Counts `parse` calls."""

    parses = 0

    def parse(self, arch_str: str) -> tuple[int, ...]:
        CountingSpace.parses += 1
        return super().parse(arch_str)


def write_table(path: Path, n: int = 500, costs: bool = False, seed: int = 0) -> Path:
    """A table of `n` random archs and a `wrcor` score; with `costs`, their flops_M and params_M
    (else, like a zero-shot table, none)."""
    rng = np.random.default_rng(seed)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["arch", "wrcor", *(["flops_M", "params_M"] if costs else [])])
        for i in rng.choice(SPACE.size, n, replace=False):
            arch = SPACE.from_index(int(i))
            c = SPACE.cost(arch)
            w.writerow(
                [SPACE.to_str(arch), f"{rng.normal():.5f}"]
                + ([c.flops_M, c.params_M] if costs else [])
            )
    return path


def test_arch_rows_parse_on_first_access_and_name_a_bad_row() -> None:
    space = CountingSpace()
    strings = [SPACE.to_str(SPACE.from_index(i)) for i in range(5)] + ["nonsense"]
    rows = ArchRows(space, strings, "t.csv")
    CountingSpace.parses = 0
    assert rows[3] == SPACE.from_index(3) and rows[3] == SPACE.from_index(3)
    assert CountingSpace.parses == 1 and rows.string(3) == strings[3] and len(rows) == 6
    with pytest.raises(DataError, match=r"t\.csv:7: bad arch 'nonsense'"):
        rows[5]
    known = ArchRows(space, strings[:2], "t.csv", [SPACE.from_index(0), SPACE.from_index(1)])
    assert list(known) == [SPACE.from_index(0), SPACE.from_index(1)] and CountingSpace.parses == 2


def test_without_dedup_only_the_shown_rows_are_parsed(tmp_path: Path) -> None:
    space = CountingSpace()
    CountingSpace.parses = 0
    read_scored(str(write_table(tmp_path / "z.csv")), space, "wrcor")
    assert CountingSpace.parses == 500  # no cost columns: each arch's come from the space
    CountingSpace.parses = 0
    scored = read_scored(str(write_table(tmp_path / "t.csv", costs=True)), space, "wrcor")
    limit = float(np.median(scored.costs["flops_M"]))
    picked = shortlist(space, scored, {"max_flops_M": limit}, 7, dedup=False)
    assert CountingSpace.parses == 7 and len(picked.top) == 7  # the shown rows, nothing else
    shown = [r["wrcor"] for r in picked.top]
    assert shown == sorted(shown, reverse=True) and all(r["flops_M"] <= limit for r in picked.top)
    assert shown[0] == scored.score[picked.within].max()


def test_dedup_shows_one_row_per_class_and_budgets_refuse(tmp_path: Path) -> None:
    scored = read_scored(str(write_table(tmp_path / "z.csv", 2000)), SPACE, "wrcor")
    picked = shortlist(SPACE, scored, {}, 10, True)
    keys = [SPACE.iso_key(SPACE.parse(r["arch"])) for r in picked.top]
    assert len(picked.top) == 10 and all("class_size" in r for r in picked.top)
    assert picked.top[0]["arch"] == scored.archs.string(picked.best)
    assert len(picked.front) >= 1 and picked.within.all() and len(set(keys)) <= 10
    lower = read_scored(str(tmp_path / "z.csv"), SPACE, "wrcor", higher_is_better=False)
    worst = shortlist(SPACE, lower, {}, 1, False).top[0]["wrcor"]
    assert worst == scored.score.min()
    with pytest.raises(BudgetError, match="max_params_M=0"):
        shortlist(SPACE, scored, {"max_params_M": 0.0}, 10)


def test_search_rows_in_memory_equal_the_csv() -> None:
    space = ChainSpace()
    rng = random.Random(0)
    results = [(space.sample(rng), 1.0 / (i + 3)) for i in range(6)]
    scored = scored_from_search(space, results, "search.csv", (1, 8, 8), 10)
    rows = search_csv_rows(scored)
    assert scored.header == ["rank", "arch", "score", "flops_M", "params_M"]
    for i, (row, (arch, s)) in enumerate(zip(rows, results)):
        assert row[0] == i + 1 and row[1] == space.to_str(arch) and row[2] == f"{s:.6g}"
        assert scored.score[i] == float(row[2])  # shown and exported as the file has it
        assert float(row[3]) == scored.costs["flops_M"][i] == space.cost(arch, (1, 8, 8)).flops_M
        assert scored.archs[i] == arch  # handed over as tuples: nothing parsed

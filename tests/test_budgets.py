"""predictor.budgets: budgets checked and applied, the messages of a budget nothing meets, the
Pareto front, the latency budget and the latency table's checks."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from predictor.budgets import (
    BudgetError,
    LatencyBudget,
    check_budget,
    pareto_front,
    read_budgets,
    read_latency_table,
    within_budgets,
)
from supernet.chain_space import ChainSpace
from supernet.latency import LatencyTable
from supernet.space import NB201Space
from supernet.utils import DataError

COSTS = {"flops_M": np.array([10.0, 20.0, 30.0]), "params_M": np.array([0.3, 0.2, 0.1])}


@pytest.mark.parametrize("value", ["abc", float("nan"), float("inf"), True, None])
def test_a_budget_is_a_finite_number(value: object) -> None:
    with pytest.raises(DataError, match="max_flops_M=.*finite number"):
        check_budget("max_flops_M", value)
    assert check_budget("max_flops_M", "12.5") == 12.5


def test_read_budgets_keeps_the_set_ones_in_order() -> None:
    values = {"max_params_M": 1, "max_flops_M": 2.5, "max_latency_ms": None, "other": 3}
    assert read_budgets(values) == {"max_flops_M": 2.5, "max_params_M": 1.0}
    assert list(read_budgets(values)) == ["max_flops_M", "max_params_M"]


def test_within_budgets_and_what_nothing_meeting_says() -> None:
    ok = within_budgets(COSTS, {"max_flops_M": 20, "max_params_M": 0.25}, "t.csv")
    assert ok.tolist() == [False, True, False]
    with pytest.raises(BudgetError, match=r"max_flops_M=5: smallest flops_M .* is 10 \(nothing"):
        within_budgets(COSTS, {"max_flops_M": 5}, "t.csv")
    with pytest.raises(DataError, match=r"t\.csv:1: max_latency_ms=3 needs a 'latency_ms'"):
        within_budgets(COSTS, {"max_latency_ms": 3}, "t.csv", ["arch", "flops_M"])
    assert issubclass(BudgetError, DataError)  # bad input: exit code 2


def test_pareto_front_by_cost() -> None:
    score = np.array([1.0, 3.0, 2.0, 3.0, 0.5])
    cost = np.array([1.0, 2.0, 2.0, 5.0, 0.5])
    assert pareto_front(score, cost).tolist() == [4, 0, 1]


def test_latency_budget_and_table_checks(tmp_path: Path) -> None:
    space = ChainSpace()
    ops = [{op: (0.0 if op == "skip" else 1.0) for op in space.ops} for _ in space.chain]
    path = LatencyTable("chain", "hand", 1, [1, 8, 8], 1.0, ops).save(tmp_path / "lat.json")
    table = read_latency_table(path, space, [1, 8, 8])
    budget = LatencyBudget(space, table, 5.0)
    arch = space.sample(random.Random(0))
    assert budget(arch) == (table.arch_ms(space, arch) <= 5.0)
    assert "smallest seen" in repr(budget)
    with pytest.raises(DataError, match="input shape"):
        read_latency_table(path, space, [3, 32, 32])
    with pytest.raises(DataError, match="latency_table=.*measured for space 'chain'"):
        read_latency_table(path, NB201Space())
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(DataError, match="not a latency table"):
        read_latency_table(tmp_path / "bad.json", space)

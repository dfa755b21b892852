"""Evolutionary search: finds a hidden optimum, respects budgets, is seeded."""

from __future__ import annotations

import random

import pytest

from predictor.search import EvolutionSearch
from supernet.chain_space import ChainSpace
from supernet.space import Arch, NB201Space


def matches(target: Arch):  # noqa: ANN201
    """Toy score: how many decisions equal the hidden target's."""
    return lambda archs: [sum(a == t for a, t in zip(arch, target)) for arch in archs]


def test_finds_the_target_in_the_chain_space() -> None:
    space = ChainSpace()
    target = space.sample(random.Random(123))
    search = EvolutionSearch(space, matches(target), population_size=32, parents=8, seed=0)
    results = search.run(generations=40)
    best, score = results[0]
    assert score >= space.num_decisions - 2  # a random arch matches ~3 of 20
    assert [s for _, s in results] == sorted((s for _, s in results), reverse=True)
    assert len({a for a, _ in results}) == len(results)  # nothing scored twice
    assert all(space.check(a) == a for a, _ in results)  # never skip on a first layer


def test_budget_is_respected_and_runs_are_seeded() -> None:
    space = ChainSpace()
    costs = [space.cost(space.sample(random.Random(s))).flops_M for s in range(50)]
    budget = sorted(costs)[10]  # about the 20th percentile of random archs
    flops_score = lambda archs: [space.cost(a).flops_M for a in archs]  # noqa: E731
    runs = [
        EvolutionSearch(space, flops_score, 16, 4, max_flops_M=budget, seed=7).run(5)
        for _ in range(2)
    ]
    assert runs[0] == runs[1]
    assert all(space.cost(a).flops_M <= budget for a, _ in runs[0])
    assert runs[0][0][1] > sorted(costs)[5]  # pushes up against the budget
    other = EvolutionSearch(space, flops_score, 16, 4, max_flops_M=budget, seed=8).run(5)
    assert other != runs[0]


def test_works_on_nb201_and_reports_bad_input() -> None:
    space = NB201Space(C=4, N=1)
    target = (3, 3, 1, 3, 2, 0)
    results = EvolutionSearch(space, matches(target), 16, 4, seed=0).run(15)
    assert results[0] == (target, 6)
    with pytest.raises(ValueError, match="no arch met the budgets max_flops_M=1e-09"):
        EvolutionSearch(space, matches(target), 8, 2, max_flops_M=1e-9, max_tries=5).run(1)
    with pytest.raises(ValueError, match="expected finite"):
        EvolutionSearch(space, lambda archs: [float("nan")] * len(archs), 8, 2).run(1)
    with pytest.raises(ValueError, match="parents=8"):
        EvolutionSearch(space, matches(target), 8, 8)

import random

import pytest

from predictor.segment import segment_search
from supernet.chain_space import ChainSpace

SPACE = ChainSpace()  # the default 20-layer chain: far too large to enumerate
TARGET = SPACE.sample(random.Random(7))


def measure(archs):
    return [sum(a == t for a, t in zip(arch, TARGET)) for arch in archs]


def additive_fit(archs, scores):
    """A stand-in predictor: the mean score of the measured archs using each (layer, op)."""
    table: dict[tuple[int, int], list[float]] = {}
    for arch, s in zip(archs, scores):
        for d, op in enumerate(arch):
            table.setdefault((d, op), []).append(s)
    mean = sum(scores) / len(scores)
    means = {key: sum(v) / len(v) for key, v in table.items()}

    def predict(candidates):
        return [sum(means.get(key, mean) for key in enumerate(arch)) for arch in candidates]

    return predict


def segments():
    bounds = [0, 5, 10, 15, 20]
    return [list(range(a, b)) for a, b in zip(bounds, bounds[1:])]


def test_segments_find_the_hidden_target():
    ranked, measured = segment_search(
        SPACE, segments(), measure, additive_fit, samples_per_segment=60, top_k=3, seed=0
    )
    best = ranked[0][0]
    assert sum(a == t for a, t in zip(best, TARGET)) >= 18
    assert len(measured) == 4 * 60  # the measurement budget, and nothing measured twice
    again, _ = segment_search(
        SPACE, segments(), measure, additive_fit, samples_per_segment=60, top_k=3, seed=0
    )
    assert again == ranked


def test_budget_is_respected_and_impossible_budgets_say_so():
    limit = 25.0
    fits = lambda arch: SPACE.cost(arch).flops_M <= limit  # noqa: E731
    ranked, measured = segment_search(
        SPACE,
        segments(),
        measure,
        additive_fit,
        samples_per_segment=20,
        top_k=2,
        fits=fits,
        seed=1,
    )
    assert all(fits(a) for a in measured) and all(fits(a) for a, _ in ranked)
    with pytest.raises(ValueError, match="loosen the budget"):
        segment_search(SPACE, segments(), measure, additive_fit, fits=lambda arch: False)

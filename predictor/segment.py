"""Segment-wise search: the chain is searched one segment at a time.

For each segment the search measures subnets that differ from the current candidates only inside
the segment (the expensive call: supernet evaluations), fits a predictor to all measurements of the
segment, ranks every variant of the segment around every candidate with it (cheap), and keeps the
best `top_k` as the candidates that the next segment builds on. Budgets are checked before anything
is measured or kept.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable, Iterable, Sequence

from supernet.space import Arch, SearchSpace

Measure = Callable[[list[Arch]], Sequence[float]]
Fit = Callable[[list[Arch], list[float]], Callable[[list[Arch]], Sequence[float]]]


def segment_search(
    space: SearchSpace,
    segments: Sequence[Sequence[int]],
    measure: Measure,
    fit: Fit,
    samples_per_segment: int = 32,
    top_k: int = 4,
    fits: Callable[[Arch], bool] = lambda arch: True,
    start: Arch | None = None,
    seed: int = 0,
    max_variants: int = 20_000,
) -> tuple[list[tuple[Arch, float]], dict[Arch, float]]:
    """Runs the segment-wise procedure.

    Args:
        space: the chain space (any space with `choices` and `sample` works).
        segments: the decisions of each segment, in search order; together they should cover the
            decisions worth searching.
        measure: archs -> measured score each (higher is better), e.g. supernet accuracy.
        fit: (archs, measured scores) -> a predictor, archs -> predicted scores.
        samples_per_segment: measurements spent on each segment.
        top_k: candidates kept after each segment.
        fits: the budget check.
        start: the arch the first segment builds on (default: a random one within budget).
        seed: seed of the sampling.
        max_variants: variants ranked per candidate; above this, a random subset is ranked.

    Returns:
        the final candidates with their predicted scores, best first, and every measurement made.
    """
    rng = random.Random(seed)
    if start is None:
        start = _draw(lambda: space.sample(rng), fits, "a starting arch")
    elif not fits(start):
        raise ValueError(f"start arch {space.to_str(start)!r} does not meet the budget")
    candidates: list[Arch] = [space.check(start)]
    measured: dict[Arch, float] = {}
    ranked: list[tuple[Arch, float]] = [(candidates[0], float("nan"))]
    for segment in segments:
        seg = list(segment)
        batch = _new_variants(space, candidates, seg, samples_per_segment, fits, measured, rng)
        for arch, score in zip(batch, measure(batch), strict=True):
            measured[arch] = float(score)
        seg_archs = [a for a in measured if _matches_outside(a, candidates, seg)]
        predict = fit(seg_archs, [measured[a] for a in seg_archs])
        archs = _variant_pool(space, candidates, seg, fits, rng, max_variants)
        scores = [float(s) for s in predict(archs)]
        ranked = sorted(zip(archs, scores), key=lambda t: -t[1])[:top_k]
        candidates = [a for a, _ in ranked]
    return ranked, measured


def _variant(base: Arch, seg: Sequence[int], ops: Sequence[int]) -> Arch:
    """`base` with the segment's decisions set to `ops`."""
    arch = list(base)
    for d, op in zip(seg, ops):
        arch[d] = op
    return tuple(arch)


def _new_variants(
    space: SearchSpace,
    candidates: list[Arch],
    seg: list[int],
    n: int,
    fits: Callable[[Arch], bool],
    measured: dict[Arch, float],
    rng: random.Random,
) -> list[Arch]:
    """`n` archs to measure: the candidates in turn, the segment redrawn, within budget, each
    new (not measured, not drawn twice)."""
    batch: list[Arch] = []
    for i in range(n):
        base = candidates[i % len(candidates)]
        arch = _draw(
            lambda b=base: _variant(b, seg, [rng.randrange(space.choices[d]) for d in seg]),
            lambda a: fits(a) and a not in measured and a not in batch,
            f"a new variant of segment {seg}",
        )
        batch.append(arch)
    return batch


def _variant_pool(
    space: SearchSpace,
    candidates: list[Arch],
    seg: list[int],
    fits: Callable[[Arch], bool],
    rng: random.Random,
    max_variants: int,
) -> list[Arch]:
    """Every variant of the segment around every candidate within budget (a random
    `max_variants` per candidate where there are more), each once, in the order found."""
    pool: dict[Arch, None] = {}
    choices = [range(space.choices[d]) for d in seg]
    total = math.prod(len(c) for c in choices)
    for base in candidates:
        if total <= max_variants:
            combos: Iterable[tuple[int, ...]] = itertools.product(*choices)
        else:
            combos = (tuple(rng.randrange(len(c)) for c in choices) for _ in range(max_variants))
        for ops in combos:
            arch = _variant(base, seg, ops)
            if fits(arch):
                pool.setdefault(arch)
    return list(pool)


def _matches_outside(arch: Arch, candidates: list[Arch], seg: list[int]) -> bool:
    """Whether `arch` equals one of the candidates outside the segment's decisions."""
    inside = set(seg)
    return any(
        all(a == c for d, (a, c) in enumerate(zip(arch, cand)) if d not in inside)
        for cand in candidates
    )


def _draw(
    make: Callable[[], Arch], ok: Callable[[Arch], bool], what: str, tries: int = 1000
) -> Arch:
    for _ in range(tries):
        arch = make()
        if ok(arch):
            return arch
    raise ValueError(f"found no {what} within the budget in {tries} draws: loosen the budget")

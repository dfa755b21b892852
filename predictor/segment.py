"""Segment-wise search: the chain is searched one segment at a time.

For each segment the search measures subnets that differ from the current candidates only inside
the segment (the expensive call: supernet evaluations), fits a predictor to all measurements of the
segment, ranks every variant of the segment around every candidate with it (cheap), and keeps the
best `top_k` as the candidates that the next segment builds on. Budgets are checked before anything
is measured or kept.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Sequence

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

        def variant(base: Arch, ops: Sequence[int], seg: list[int] = seg) -> Arch:
            arch = list(base)
            for d, op in zip(seg, ops):
                arch[d] = op
            return tuple(arch)

        def redraw(base: Arch, seg: list[int] = seg) -> Arch:
            return variant(base, [rng.randrange(space.choices[d]) for d in seg])

        batch: list[Arch] = []
        for i in range(samples_per_segment):
            base = candidates[i % len(candidates)]
            arch = _draw(
                lambda b=base: redraw(b),
                lambda a, batch=batch: fits(a) and a not in measured and a not in batch,
                f"a new variant of segment {seg}",
            )
            batch.append(arch)
        for arch, score in zip(batch, measure(batch), strict=True):
            measured[arch] = float(score)
        seg_archs = [a for a in measured if _matches_outside(a, candidates, seg)]
        predict = fit(seg_archs, [measured[a] for a in seg_archs])
        pool: dict[Arch, None] = {}
        for base in candidates:
            choices = [range(space.choices[d]) for d in seg]
            total = 1
            for c in choices:
                total *= len(c)
            if total <= max_variants:
                combos = itertools.product(*choices)
            else:
                combos = (
                    tuple(rng.randrange(len(c)) for c in choices) for _ in range(max_variants)
                )
            for ops in combos:
                arch = variant(base, ops)
                if fits(arch):
                    pool.setdefault(arch)
        archs = list(pool)
        scores = [float(s) for s in predict(archs)]
        ranked = sorted(zip(archs, scores), key=lambda t: -t[1])[:top_k]
        candidates = [a for a, _ in ranked]
    return ranked, measured


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

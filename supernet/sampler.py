"""Path samplers: plain seeded objects beside the supernet, each step's archs drawn by `sample_step`."""

from __future__ import annotations

import itertools
import math
import random
from typing import Any

from supernet.results import read_ranked_scores
from supernet.space import Arch, SearchSpace
from supernet.utils import DataError


class Sampler:
    """Uniform single path (SPOS): every op of every decision equally likely, one path per step.

    Args:
        space: the search space.
        seed: seed of the sampler's own generator (saved in checkpoints, so resume is exact).
    """

    paths_per_step = 1

    def __init__(self, space: SearchSpace, seed: int = 0) -> None:
        self.space = space
        self.rng = random.Random(seed)

    def sample(self) -> Arch:
        return self.space.sample(self.rng)

    def sample_step(self) -> list[Arch]:
        """The archs one training step accumulates gradients over."""
        return [self.sample()]

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.rng.getstate()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.setstate(state["rng"])


UniformSampler = Sampler


class IsomorphismSampler(Sampler):
    """Uniform over isomorphism classes (6,466 in NB201), then uniform within the drawn class, so
    archs with many equivalent spellings are not oversampled."""

    def __init__(self, space: SearchSpace, seed: int = 0) -> None:
        super().__init__(space, seed)
        classes: dict[str, list[Arch]] = {}
        for arch in space.all_archs():
            classes.setdefault(space.iso_key(arch), []).append(arch)
        self.classes = list(classes.values())

    def sample(self) -> Arch:
        return self.rng.choice(self.rng.choice(self.classes))


class FairSampler(Sampler):
    """FairNAS: each step trains as many paths as a decision has ops, and every op of every decision
    appears in them exactly once (a random permutation per decision; a decision with fewer allowed
    ops fills the remaining paths with random draws). Gradients are accumulated over the paths."""

    def __init__(self, space: SearchSpace, seed: int = 0) -> None:
        super().__init__(space, seed)
        self.paths_per_step = max(space.choices)

    def sample_step(self) -> list[Arch]:
        perms = []
        for n in self.space.choices:
            p = list(range(n))
            self.rng.shuffle(p)
            perms.append(p + [self.rng.randrange(n) for _ in range(self.paths_per_step - n)])
        return [tuple(p[k] for p in perms) for k in range(self.paths_per_step)]

    def sample(self) -> Arch:
        return self.sample_step()[0]


class SandwichSampler(Sampler):
    """The sandwich rule (BigNAS, Yu et al. 2020): each step trains the space's largest and
    smallest arch (`SearchSpace.sandwich_ends`) and `paths - 2` uniform ones, gradients
    accumulated, so the extremes every path lies between are trained in every step.

    Args:
        paths: archs per step, at least 3.

    Raises:
        DataError: fewer than 3 paths, or a space without a largest and smallest arch.
    """

    def __init__(self, space: SearchSpace, seed: int = 0, paths: int = 4) -> None:
        super().__init__(space, seed)
        if int(paths) < 3:
            raise DataError(
                f"sampler.paths={paths}: the sandwich rule trains the largest, the smallest and "
                "at least one random arch per step; expected at least 3"
            )
        self.paths_per_step = int(paths)
        try:
            self.ends = list(space.sandwich_ends())
        except ValueError as err:  # a setting this space cannot take: exit 2, not a traceback
            raise DataError(str(err)) from None

    def sample_step(self) -> list[Arch]:
        return self.ends + [self.sample() for _ in range(self.paths_per_step - 2)]


class PriorSampler(Sampler):
    """Zero-cost-guided sampling: with probability `mix` a uniform arch, otherwise one of the archs
    of a zero-shot file drawn with weight exp(z / temperature), z the normal score of its rank by
    `column` (best highest). Training goes where a free signal says the good archs are, whose order
    the supernet ranks worst (Kendall within the true top 10% near 0 or below, BENCHMARKS.md).

    Args:
        scores: a CSV with `arch` and `column` (a `nas-zeroshot` file; `archs=classes` lists one
            member per class of same-function cells).
        column: the higher-is-better score to follow.
        temperature: > 0. At 1, among 6,285 archs the best weighs 44x a median one and the
            top 1% 10x; the drawn normal scores are then N(1, 1), a quarter of all draws (with
            `mix` 0.5) in the signal's top 10%.
        mix: the share of uniform draws, in [0, 1).

    Raises:
        DataError: a bad setting; the file's errors name its line and value.
    """

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        scores: str | None = None,
        column: str = "meco",
        temperature: float = 1.0,
        mix: float = 0.5,
    ) -> None:
        super().__init__(space, seed)
        if not scores:
            raise DataError(
                "sampler=prior needs sampler.scores=<a zero-shot CSV with arch and the column>"
            )
        if not float(temperature) > 0 or not 0 <= float(mix) < 1:
            raise DataError(
                f"sampler.temperature={temperature} must be > 0 and sampler.mix={mix} in [0, 1)"
            )
        self.archs, z = read_ranked_scores(scores, space, column)  # best first
        weights = [math.exp(v / float(temperature)) for v in z]
        self.cum_weights = list(itertools.accumulate(weights))
        self.mix = float(mix)

    def sample(self) -> Arch:
        if self.rng.random() < self.mix:
            return self.space.sample(self.rng)
        return self.rng.choices(self.archs, cum_weights=self.cum_weights)[0]


class FixedSampler(Sampler):
    """Always the same arch: trains one subnet standalone (retraining a chosen architecture).

    Args:
        arch: the arch string.
    """

    def __init__(self, space: SearchSpace, arch: str, seed: int = 0) -> None:
        super().__init__(space, seed)
        self.arch = space.parse(arch)

    def sample(self) -> Arch:
        return self.arch

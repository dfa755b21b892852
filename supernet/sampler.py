"""Path samplers: plain seeded objects beside the supernet, each step's archs drawn by `sample_step`."""

from __future__ import annotations

import random
from typing import Any

from supernet.space import Arch, SearchSpace


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
        ValueError: fewer than 3 paths, or a space without a largest and smallest arch.
    """

    def __init__(self, space: SearchSpace, seed: int = 0, paths: int = 4) -> None:
        super().__init__(space, seed)
        if int(paths) < 3:
            raise ValueError(
                f"sampler.paths={paths}: the sandwich rule trains the largest, the smallest and "
                "at least one random arch per step; expected at least 3"
            )
        self.paths_per_step = int(paths)
        self.ends = list(space.sandwich_ends())

    def sample_step(self) -> list[Arch]:
        return self.ends + [self.sample() for _ in range(self.paths_per_step - 2)]


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

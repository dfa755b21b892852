"""Evolutionary search over a space too large to tabulate, driven by any batch score function.

The score is usually the fitted predictor (`lambda archs: predictor.predict(ops(archs))`), but any
`score(archs) -> list[float]` (higher is better) works: a zero-shot proxy, a supernet evaluation. Each
generation keeps the best `parents` of the population and refills it with mutants (every decision
redrawn with probability `mutate_prob`) and uniform crossovers of two parents, as OFA's search does.
Candidates over a FLOPs / params budget, or failing an extra `constraint` (a latency budget, say),
are rejected before scoring, and no arch is scored twice.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from functools import partial

from supernet.space import Arch, SearchSpace

Score = Callable[[list[Arch]], Sequence[float]]


class NoArchFits(ValueError):
    """Not one random arch met the budgets and the constraint; the message says what was seen."""


class EvolutionSearch:
    """Seeded evolutionary search under FLOPs / params budgets.

    Decision `i` takes one of the first `space.choices[i]` ops (all of them on NB201, not `skip` on
    a chain stage's first layer); random archs are `space.sample(rng)`. Crossover of two valid archs
    is valid under such per-decision rules.

    Args:
        space: the search space.
        score: archs -> one score each, higher is better (called once per generation).
        population_size: archs per generation.
        parents: best archs kept as the next generation's parents.
        mutate_prob: probability of redrawing each decision of a mutant.
        crossover_fraction: part of the children made by crossover (the rest by mutation).
        max_flops_M, max_params_M: budgets (None: no budget).
        constraint: an extra test every arch must pass (e.g. a latency budget); its `repr` is
            quoted when no arch passes, so it can say what it wanted and what it saw.
        input_shape, num_classes: what the costs are computed for.
        seed: seed of the search's own generator.
        max_tries: candidate draws per wanted arch before giving up.
    """

    def __init__(
        self,
        space: SearchSpace,
        score: Score,
        population_size: int = 64,
        parents: int = 16,
        mutate_prob: float = 0.1,
        crossover_fraction: float = 0.5,
        max_flops_M: float | None = None,
        max_params_M: float | None = None,
        constraint: Callable[[Arch], bool] | None = None,
        input_shape: Sequence[int] = (3, 32, 32),
        num_classes: int = 10,
        seed: int = 0,
        max_tries: int = 100,
    ) -> None:
        if not 1 <= parents < population_size:
            raise ValueError(
                f"parents={parents} must be in [1, population_size={population_size})"
            )
        if not 0.0 <= mutate_prob <= 1.0 or not 0.0 <= crossover_fraction <= 1.0:
            raise ValueError(
                f"mutate_prob={mutate_prob} and crossover_fraction={crossover_fraction} must be "
                "in [0, 1]"
            )
        self.space, self.score_fn = space, score
        self.population_size, self.parents = population_size, parents
        self.mutate_prob, self.crossover_fraction = mutate_prob, crossover_fraction
        self.max_flops_M, self.max_params_M = max_flops_M, max_params_M
        self.constraint = constraint
        self.input_shape, self.num_classes = tuple(input_shape), num_classes
        self.max_tries = max_tries
        self.rng = random.Random(seed)
        self.choices: tuple[int, ...] = tuple(space.choices)
        self.scores: dict[Arch, float] = {}  # every arch scored so far
        self._fits: dict[Arch, bool] = {}
        self._smallest = (math.inf, math.inf)  # smallest flops, params met (for the error)

    def fits(self, arch: Arch) -> bool:
        """Whether `arch` meets every budget and the constraint."""
        if arch not in self._fits:
            c = self.space.cost(arch, self.input_shape, self.num_classes)
            self._smallest = (
                min(self._smallest[0], c.flops_M),
                min(self._smallest[1], c.params_M),
            )
            self._fits[arch] = (
                (self.max_flops_M is None or c.flops_M <= self.max_flops_M)
                and (self.max_params_M is None or c.params_M <= self.max_params_M)
                and (self.constraint is None or bool(self.constraint(arch)))
            )
        return self._fits[arch]

    def random_arch(self) -> Arch:
        return self.space.sample(self.rng)

    def mutate(self, arch: Arch) -> Arch:
        return tuple(
            self.rng.randrange(n) if self.rng.random() < self.mutate_prob else a
            for a, n in zip(arch, self.choices)
        )

    def crossover(self, a: Arch, b: Arch) -> Arch:
        return tuple(x if self.rng.random() < 0.5 else y for x, y in zip(a, b))

    def _cross_child(self, parents: list[Arch]) -> Arch:
        if len(parents) < 2:
            return parents[0]
        return self.crossover(*self.rng.sample(parents, 2))

    def _mutant(self, parents: list[Arch]) -> Arch:
        return self.mutate(self.rng.choice(parents))

    def _draw(self, make: Callable[[], Arch], count: int, taken: set[Arch]) -> list[Arch]:
        """Up to `count` new archs from `make` that meet the budgets and are not in `taken` (fewer
        when `count * max_tries` draws do not find them: the population then shrinks)."""
        out: list[Arch] = []
        for _ in range(count * self.max_tries):
            if len(out) == count:
                break
            arch = self.space.check(make())
            if arch not in taken and self.fits(arch):
                taken.add(arch)
                out.append(arch)
        return out

    def _score(self, archs: list[Arch]) -> None:
        new = [a for a in archs if a not in self.scores]
        if not new:
            return
        values = [float(v) for v in self.score_fn(new)]
        if len(values) != len(new):
            raise ValueError(f"score returned {len(values)} values for {len(new)} archs")
        for arch, v in zip(new, values):
            if not math.isfinite(v):
                raise ValueError(f"score of {self.space.to_str(arch)!r} is {v}; expected finite")
            self.scores[arch] = v

    def run(self, generations: int = 20) -> list[tuple[Arch, float]]:
        """Runs the search; returns every arch scored, best first (ties: first scored first).

        Raises:
            NoArchFits: when not one random arch meets the budgets and the constraint in
                `max_tries` draws per population member.
        """
        taken = set(self.scores)
        population = self._draw(self.random_arch, self.population_size, taken)
        if not population:
            extra = "" if self.constraint is None else f", constraint {self.constraint!r}"
            raise NoArchFits(
                f"no arch met the budgets max_flops_M={self.max_flops_M}, "
                f"max_params_M={self.max_params_M}{extra} in "
                f"{self.population_size * self.max_tries} random draws; smallest seen: "
                f"{self._smallest[0]:.4g} MFLOPs, {self._smallest[1]:.4g} M params"
            )
        self._score(population)
        for _ in range(generations):
            population.sort(key=lambda a: -self.scores[a])
            best = population[: self.parents]
            n_children = self.population_size - len(best)
            n_cross = round(n_children * self.crossover_fraction)
            children = self._draw(partial(self._cross_child, best), n_cross, taken)
            children += self._draw(partial(self._mutant, best), n_children - len(children), taken)
            self._score(children)
            population = best + children
        order = {a: i for i, a in enumerate(self.scores)}
        return sorted(self.scores.items(), key=lambda kv: (-kv[1], order[kv[0]]))

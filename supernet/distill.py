"""Zero-cost rank distillation (after RD-NAS, ICASSP 2023): a free signal's order taught to the
supernet while it trains.

Each step trains two or more paths on the same batch. Besides their cross-entropy, a margin
ranking loss asks their losses to keep the order of a zero-shot score (MeCo by default): for each
pair whose scores differ, the path the score prefers should have the lower loss by `margin`. The
score of an arch is that of its class of same-function cells, so a `nas-zeroshot archs=classes`
file covers every arch of NB201.

    nas-train supernet.distill.scores=zeroshot.csv [supernet.distill.weight=0.5] trainer.max_epochs=45

Two paths a step cost about twice a uniform step: at equal training time, half the epochs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from supernet.classes import class_index
from supernet.results import read_ranked_scores
from supernet.space import Arch, SearchSpace
from supernet.utils import DataError


class RankDistillation:
    """The teacher's normal scores by class, and the pairwise loss.

    Args:
        space: an enumerable search space (NB201).
        scores: a CSV with `arch` and `column` (higher is better).
        column: the score to follow.
        weight: the ranking loss's weight against the paths' mean cross-entropy (> 0).
        margin: how much lower (in nats) the preferred path's loss should be (>= 0).
        paths: paths trained per step (>= 2); a sampler giving fewer is topped up with its draws.

    Raises:
        DataError: a bad setting, a space that cannot be listed, or a file with no arch; the
            file's errors name its line and value.
    """

    def __init__(
        self,
        space: SearchSpace,
        scores: str,
        column: str = "meco",
        weight: float = 0.5,
        margin: float = 0.05,
        paths: int = 2,
    ) -> None:
        if not float(weight) > 0 or not float(margin) >= 0 or int(paths) < 2:
            raise DataError(
                f"supernet.distill: weight={weight} must be > 0, margin={margin} >= 0 and "
                f"paths={paths} >= 2"
            )
        if not space.enumerable:
            raise DataError(
                f"supernet.distill needs a space whose archs can be listed, not {space.name}"
            )
        self.space, self.classes = space, class_index(space)
        self.weight, self.margin, self.paths = float(weight), float(margin), int(paths)
        self.scores, self.column = str(scores), column
        self.by_class: dict[int, float] = {}  # a class's best-ranked member speaks for it
        for arch, z in zip(*read_ranked_scores(scores, space, column)):
            self.by_class.setdefault(int(self.classes[space.index(arch)]), z)

    def describe(self) -> dict[str, Any]:
        """Plain data for the checkpoint's hyper-parameters."""
        return {
            "scores": self.scores,
            "column": self.column,
            "weight": self.weight,
            "margin": self.margin,
            "paths": self.paths,
            "classes_scored": len(self.by_class),
        }

    def score(self, arch: Arch) -> float | None:
        """The normal score of `arch`'s class, None when the file has none for it."""
        return self.by_class.get(int(self.classes[self.space.index(arch)]))

    def loss(self, archs: Sequence[Arch], losses: torch.Tensor) -> torch.Tensor:
        """Mean hinge max(0, margin - (L_worse - L_better)) over the pairs whose scores differ.

        Shapes:
            losses `(len(archs),)`, each path's cross-entropy on the step's batch -> scalar.
        """
        scores = [self.score(a) for a in archs]
        terms = []
        for i in range(len(archs)):
            for j in range(i + 1, len(archs)):
                if scores[i] is None or scores[j] is None or scores[i] == scores[j]:
                    continue  # a class the file lacks, or one class
                better, worse = (i, j) if scores[i] > scores[j] else (j, i)
                terms.append(torch.relu(self.margin - (losses[worse] - losses[better])))
        if not terms:
            return losses.new_zeros(())
        return torch.stack(terms).mean()


def rank_distillation(
    space: SearchSpace, scores: str | None = None, **options: Any
) -> RankDistillation | None:
    """The config's entry (`supernet.distill`): None while `scores` is unset (no distillation)."""
    return RankDistillation(space, scores, **options) if scores else None

"""Fusing the fitted table with free whole-space signals, and what the cell computes.

A supernet's accuracies are biased in structured ways: the few-shot NB201 supernet under-rates
cells with many 3x3 convolutions and over-rates pooling cells (measured on its accuracies for all
15,625 archs; BENCHMARKS.md). Zero-shot scores and parameter counts err differently. The table
ranks by a *soft minimum* of the signals' normal scores: an arch ranks high only when no signal
ranks it low, so whichever signal is wrong in the optimistic direction is discounted. On real
supernet accuracies this beat the rank average (the old `vote_with`) in every draw measured.

Signals describe what the cell computes, not its string: a dead op (off every input -> output path,
see `predictor.topk.live_edges`) changes nothing, so costs are those of the pruned arch (dead
convolutions cost nothing) and zero-shot scores may be given for one member of each isomorphism
class (`class_index`). Live parameters alone rank NB201 at Kendall tau 0.654, parameters counted
on the string 0.578.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy.stats import norm, rankdata

from supernet.classes import live_index
from supernet.space import SearchSpace
from supernet.utils import DataError

RULES = ("softmin", "mean")


def normal_scores(values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Average ranks mapped to standard normal quantiles: the shape of a signal's scale (heavy
    tails, a floor of dead archs at 10%) drops out, its order stays. Ties share a score.

    Shapes:
        `(n,)` -> `(n,)`.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or len(values) == 0:
        raise ValueError(f"normal_scores expects a non-empty 1-D array, got shape {values.shape}")
    if np.isnan(values).any():
        raise ValueError("normal_scores: values contain NaN")
    return norm.ppf((rankdata(values) - 0.5) / len(values))


def agreement(z: np.ndarray, k: int) -> float:
    """How far column `k` of the normal scores `z` tracks what the other columns share, in [0, 1]
    (no truth used). With two others j, l it is the one-factor loading sqrt(c_kj c_kl / c_jl) of
    the correlations c (the spectral meta-learner's estimate of a column's correlation with the
    common cause); with one other, their correlation. 0 when it disagrees with any other.

    A supernet can be consistent with itself and wrong: a 10-epoch CIFAR supernet whose accuracies
    rank NB201 at Kendall 0.01 was fitted with a held-out tau of 0.71, but its prediction's
    correlation with WRCor and live params was negative. The few-shot supernet's: 0.55-0.73.

    Shapes:
        z `(n, K)`, K >= 2.
    """
    c = np.corrcoef(z.T)
    others = [j for j in range(z.shape[1]) if j != k]
    if any(c[k, j] <= 0 for j in others):
        return 0.0
    if len(others) == 1:
        return float(min(c[k, others[0]], 1.0))
    loads = [
        c[k, j] * c[k, m] / c[j, m]
        for a, j in enumerate(others)
        for m in others[a + 1 :]
        if c[j, m] > 0
    ]
    return float(np.sqrt(min(np.median(loads), 1.0))) if loads else 0.0


def fuse(
    columns: Mapping[str, Sequence[float] | np.ndarray],
    rule: str = "softmin",
    beta: float = 1.0,
    trust: str | None = None,
) -> np.ndarray:
    """One whole-space score from several higher-is-better columns (`fuse_weighted`'s score)."""
    return fuse_weighted(columns, rule, beta, trust)[0]


def fuse_weighted(
    columns: Mapping[str, Sequence[float] | np.ndarray],
    rule: str = "softmin",
    beta: float = 1.0,
    trust: str | None = None,
) -> tuple[np.ndarray, dict[str, float]]:
    """One whole-space score from several higher-is-better columns, and each column's weight
    (every one 1.0 without `trust`).

    Args:
        columns: name -> `(n,)` scores (a prediction, zero-shot scores, live params).
        rule: `softmin`: -log(sum_k w_k exp(-beta z_k) / sum_k w_k) / beta over the normal scores
            z_k (an arch ranks by its worst signals); `mean`: their w-weighted average.
        beta: softness, in units of normal score. 1: over nine real supernet files (a published
            few-shot supernet, three draws; six of our CPU supernets), the default fusion ranked
            best at 0.75-1.5 and never worse than at 2, the value fixed before any measurement
            (BENCHMARKS.md, issue 18).
        trust: a column (the prediction) whose weight w is the square of its `agreement` a with
            the others: in the one-factor model a^2 is the share of the column's variance the
            common cause explains, its reliability. A prediction from a supernet that ranks
            nothing drops out of the fusion instead of dragging it below the free signals. When
            three or more columns remain, every other column is weighed by its own reliability
            the same way (with two, a one-factor model cannot tell them apart: they weigh 1), so
            a weak zero-shot score counts less than a strong one. None: all weigh 1. See
            BENCHMARKS.md, issue 18, for what each step gained on real supernet files.

    Shapes:
        each column `(n,)` -> score `(n,)` float64.
    """
    _check_fusion(columns, rule, beta, trust)
    names = list(columns)
    z = np.stack([normal_scores(col) for col in columns.values()], axis=1)
    w = np.ones(z.shape[1])
    if trust is not None and len(names) > 1:
        k = names.index(trust)
        w[k] = agreement(z, k) ** 2
        kept = np.flatnonzero(w > 0)
        if len(kept) >= 3 and k in kept:
            reliable = np.array([agreement(z[:, kept], j) ** 2 for j in range(len(kept))])
            if (reliable[kept != k] > 0).any():  # not every free signal disagreeing
                w[kept[kept != k]] = reliable[kept != k]
    weights = dict(zip(names, w.tolist()))
    z, w = z[:, w > 0], w[w > 0]
    if rule == "mean":
        return z @ w / w.sum(), weights
    low = z.min(axis=1, keepdims=True)  # log-sum-exp shifted by the minimum: no overflow
    soft = low[:, 0] - np.log((w * np.exp(-beta * (z - low))).sum(axis=1) / w.sum()) / beta
    return soft, weights


def _check_fusion(
    columns: Mapping[str, Sequence[float] | np.ndarray], rule: str, beta: float, trust: str | None
) -> None:
    """`fuse_weighted`'s arguments, each refused with what was expected."""
    if rule not in RULES:
        raise ValueError(f"fusion rule {rule!r}; expected one of {RULES}")
    if not columns:
        raise ValueError("fuse needs at least one column")
    lengths = {name: len(col) for name, col in columns.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"fuse: columns differ in length {lengths}")
    if beta <= 0:
        raise ValueError(f"fusion beta={beta}; expected > 0")
    if trust is not None and trust not in columns:
        raise ValueError(f"fuse: trust={trust!r} is not a column; have {sorted(columns)}")


# columns `vote_with=auto` never takes: params / flops count dead ops, and a `vote` column averages
# them in again
AUTO_SKIP = ("params", "flops", "vote")
# the zero-shot columns `vote_with=auto` takes when the features have them: with MeCo beside WRCor
# the fused table gained 0.02-0.03 Kendall on every supernet file measured (BENCHMARKS.md). With
# both, live params are left out: each score already favours large cells (Kendall 0.57 / 0.77
# with live params over 1,500 NB201 classes), and a third size signal cost 0.003-0.014 on each of
# nine supernet files (BENCHMARKS.md, issue 18)
BEST_ZERO_SHOT = ("wrcor", "meco")


def vote_columns(
    wanted: str | Sequence[str] | None,
    space: SearchSpace,
    costs: np.ndarray | None,
    features: tuple[list[str], np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """The whole-space columns named by `vote_with`, checked before anything is fitted.

    Args:
        wanted: column names; `"auto"`: the features' `wrcor` and `meco` when it has both,
            else live params_M and those it has (every zero-shot column but `AUTO_SKIP` when it
            has neither), the best fusion measured (BENCHMARKS.md);
            None or empty: no vote.
        costs: `cost_columns` of the space (None: a space too large to list).
        features: `read_features`' names and values.

    Returns:
        name -> `(space.size,)` values in canonical index order; flops_M / params_M are those of
        the pruned arch (a cell pays for what it computes: dead ops cost nothing).

    Raises:
        DataError: a vote on a space too large to list, or a column nobody has.
    """
    if wanted == "auto":
        if costs is None:
            return {}
        zero_shot = [c for c in (features[0] if features else []) if c not in AUTO_SKIP]
        best = [c for c in BEST_ZERO_SHOT if c in zero_shot]
        wanted = best if len(best) == len(BEST_ZERO_SHOT) else ["params_M", *(best or zero_shot)]
    wanted = list(wanted or [])
    if not wanted:
        return {}
    if costs is None:
        raise DataError(
            f"vote_with={wanted}: a vote ranks every arch of the space, and this space is too "
            "large to list; search it without vote_with"
        )
    live = costs[live_index(space)]
    available = {"flops_M": live[:, 0], "params_M": live[:, 1]}
    if features is not None:
        available.update(zip(features[0], features[1].T))
    missing = [c for c in wanted if c not in available]
    if missing:
        raise DataError(
            f"vote_with: no column {missing}; available: {sorted(available)} (features= adds "
            "the columns of its CSV)"
        )
    return {c: available[c] for c in wanted}

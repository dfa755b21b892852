"""Ranking metrics against a ground truth: what the NB201 benchmark reports for every ranking.

Only benchmark code calls these with the truth; nothing in the pipeline reads it.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import stats


def _pairs(score: dict[str, float], truth: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    keys = [k for k in score if k in truth]
    if len(keys) < 2:
        raise ValueError(
            f"only {len(keys)} archs are both scored and in the truth; need at least 2"
        )
    return np.array([score[k] for k in keys], float), np.array([truth[k] for k in keys], float)


def by_class(values: dict[str, float], key: Callable[[str], str]) -> dict[str, float]:
    """Mean value per isomorphism class (archs in one class compute the same function)."""
    groups: dict[str, list[float]] = {}
    for arch, v in values.items():
        groups.setdefault(key(arch), []).append(v)
    return {k: float(np.mean(v)) for k, v in groups.items()}


def precision_at(score: dict[str, float], truth: dict[str, float], fraction: float) -> float:
    """Share of our top `fraction` of the archs that lie in the true top `fraction`."""
    s, t = _pairs(score, truth)
    k = max(1, int(round(len(s) * fraction)))
    ours = set(np.argsort(-s, kind="stable")[:k])
    best = set(np.argsort(-t, kind="stable")[:k])
    return len(ours & best) / k


def ranking_report(
    score: dict[str, float], truth: dict[str, float], iso_key: Callable[[str], str] | None = None
) -> dict[str, float]:
    """Kendall tau and Spearman over the scored archs (and over isomorphism classes), precision in
    the true top 5% and 1%, and the true accuracy of our top-1 pick and mean of our top-10.

    Args:
        score: arch string -> our score (higher is better).
        truth: arch string -> true accuracy.
        iso_key: arch string -> isomorphism class key, for the per-class figures.
    """
    s, t = _pairs(score, truth)
    order = np.argsort(-s, kind="stable")
    report = {
        "n": int(len(s)),
        "kendall": float(stats.kendalltau(s, t).statistic),
        "spearman": float(stats.spearmanr(s, t).statistic),
        "precision_top5": precision_at(score, truth, 0.05),
        "precision_top1": precision_at(score, truth, 0.01),
        "top1_true_acc": float(t[order[0]]),
        "top10_true_acc": float(t[order[:10]].mean()),
    }
    if iso_key is not None:
        cs, ct = _pairs(by_class(score, iso_key), by_class(truth, iso_key))
        report.update(
            n_classes=int(len(cs)),
            kendall_classes=float(stats.kendalltau(cs, ct).statistic),
            spearman_classes=float(stats.spearmanr(cs, ct).statistic),
        )
    return report

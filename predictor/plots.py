"""The stages' PNG plots: the fit (prediction against measurement) and the Pareto front (score
against each cost). Each is written atomically; matplotlib is imported on first use (a stage that
plots nothing does not pay for it)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from predictor.budgets import BUDGETS, pareto_front
from supernet.utils import atomic_savefig


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_fit(
    path: str | Path,
    acc: np.ndarray,
    pred: np.ndarray,
    title: str,
    xlabel: str = "measured acc (%)",
) -> Path:
    """Predicted score against measured accuracy (the training samples, or a benchmark's truth).

    Shapes:
        acc `(n,)`, pred `(n,)`.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.scatter(acc, pred, s=8, alpha=0.6)
    lo, hi = float(min(acc.min(), pred.min())), float(max(acc.max(), pred.max()))
    ax.plot([lo, hi], [lo, hi], color="grey", lw=0.8, ls="--")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("predicted score")
    ax.set_title(title, fontsize=9)
    try:
        return atomic_savefig(fig, path)
    finally:
        plt.close(fig)


def plot_pareto(
    path: str | Path,
    score: np.ndarray,
    costs: Mapping[str, np.ndarray],
    best: int,
    score_column: str,
    budgets: Mapping[str, float],
    title: str,
) -> Path:
    """One panel per cost column (`flops_M`, `params_M`): every arch, the Pareto front (drawn
    large and on top, so a one-point front shows), the chosen arch and the budget on that cost.

    Shapes:
        score `(n,)`, each cost `(n,)`; `best` a row index.
    """
    plt = _pyplot()
    limits = {col: budgets[key] for key, col in BUDGETS.items() if key in budgets}
    fig, axes = plt.subplots(1, len(costs), figsize=(5 * len(costs), 4.5), squeeze=False)
    for ax, (col, cost) in zip(axes[0], costs.items()):
        front = pareto_front(score, cost)
        ax.scatter(cost, score, s=3, alpha=0.25, color="grey", label="all archs")
        ax.plot(cost[front], score[front], "-", color="C0", lw=1, zorder=3)
        label = f"Pareto front ({len(front)})"
        ax.scatter(cost[front], score[front], s=25, c="C0", ec="k", lw=0.5, zorder=4, label=label)
        ax.scatter(
            cost[best], score[best], s=140, marker="*", color="C3", zorder=5, label="chosen"
        )
        if col in limits:
            ax.axvline(limits[col], color="C3", ls="--", lw=0.8, label=f"budget {limits[col]:g}")
        ax.set_xlabel(col.replace("_M", " (M)"))
        ax.set_ylabel(score_column)
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    try:
        return atomic_savefig(fig, path)
    finally:
        plt.close(fig)

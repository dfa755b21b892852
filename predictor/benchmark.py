"""Whole-space ranking quality of fitted tables on real supernet accuracies (no hydra here).

A *samples file* (`arch,acc`, e.g. a published supernet's accuracy for every arch, or a
`subnets.csv` of our own) plays the measured subnets: `n` rows are drawn, every method ranks the
whole space from them (and from free whole-space signals), and each ranking is scored against a
ground truth. The truth is read by the caller and used only by `rank_metrics`.
"""

from __future__ import annotations

import csv
import datetime
import os
import platform
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy.stats import kendalltau, spearmanr
from sklearn.kernel_ridge import KernelRidge

from predictor.fusion import fuse, live_index
from predictor.io import atomic_write_json, atomic_write_text, git_hash
from predictor.module import RidgePredictor
from predictor.table import all_ops, predict_all
from supernet.proxies.vote import rank_vote
from supernet.space import SearchSpace

TOP_FRACTION = 0.1  # "within the true top 10%"


def cpu_model() -> str:
    """The CPU's model name (lscpu), for the record of where a figure was measured."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            if line.startswith("Model name"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return platform.processor() or "unknown"


def write_report(
    json_path: str | Path, md_path: str | Path, results: dict, markdown: str, config: dict
) -> dict:
    """Writes a benchmark's results with where and when they were measured (date, commit, device,
    torch threads, load average, the resolved config) as JSON, and its markdown; returns the
    record."""
    record = {
        **results,
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "git": git_hash(),
        "device": cpu_model(),
        "torch_threads": torch.get_num_threads(),
        "load_average": list(os.getloadavg()),
        "config": config,
    }
    atomic_write_json(json_path, record)
    atomic_write_text(md_path, markdown)
    return record


def read_truth(path: str | Path, space: SearchSpace, column: str) -> np.ndarray:
    """Ground truth of every arch in canonical index order, joined on the arch string.

    Shapes:
        `(space.size,)`.
    """
    truth = np.full(space.size, np.nan)
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            truth[space.index(space.parse(row["arch"]))] = float(row[column])
    if np.isnan(truth).any():
        raise ValueError(f"{path}: {int(np.isnan(truth).sum())} archs have no {column!r} value")
    return truth


def rank_metrics(score: np.ndarray, truth: np.ndarray, classes: np.ndarray) -> dict[str, float]:
    """How well `score` ranks the space against `truth`.

    Returns:
        kendall / spearman over every arch; kendall_classes over one row per class (the class's
        mean score and truth); kendall_top10 within the true top 10%; top1 / top10 the true
        accuracy of the best-scored arch and the mean of the 10 best-scored classes' best members.

    Shapes:
        score, truth, classes `(space.size,)`.
    """
    _, inverse = np.unique(classes, return_inverse=True)
    counts = np.bincount(inverse)
    class_score = np.bincount(inverse, score) / counts
    class_truth = np.bincount(inverse, truth) / counts
    top = truth >= np.quantile(truth, 1.0 - TOP_FRACTION)
    order = np.argsort(-score, kind="stable")
    seen, best = set(), []
    for i in order:  # the 10 best-scored classes, each by its best-scored member
        if inverse[i] not in seen:
            seen.add(inverse[i])
            best.append(truth[i])
            if len(best) == 10:
                break
    return {
        "kendall": float(kendalltau(score, truth)[0]),
        "spearman": float(spearmanr(score, truth)[0]),
        "kendall_classes": float(kendalltau(class_score, class_truth)[0]),
        "kendall_top10": float(kendalltau(score[top], truth[top])[0]),
        "top1": float(truth[order[0]]),
        "top10": float(np.mean(best)),
    }


@dataclass
class Signals:
    """What a method may use besides the drawn rows: free whole-space columns.

    Attributes:
        params / live_params: parameter count of every arch as written, and of what it computes.
        zero_shot: name -> whole-space score (e.g. wrcor), possibly empty.
        ops: `(space.size, num_decisions)` every arch's op indices.
    """

    params: np.ndarray
    live_params: np.ndarray
    zero_shot: dict[str, np.ndarray]
    ops: torch.Tensor


def make_signals(
    space: SearchSpace, params: np.ndarray, zero_shot: Mapping[str, np.ndarray]
) -> Signals:
    return Signals(params, params[live_index(space)], dict(zero_shot), all_ops(space))


def _ridge(space: SearchSpace, idx: np.ndarray, y: np.ndarray, s: Signals, prune: bool):
    pred = RidgePredictor(space, alpha=1.0, prune=prune)
    pred.fit(s.ops[idx], torch.tensor(y))
    return predict_all(pred, space)


def _kernel_ridge(idx: np.ndarray, y: np.ndarray, s: Signals) -> np.ndarray:
    # RBF on one-hot ops; alpha 0.1, gamma 0.2: what 5-fold CV on the noisy rows chose in most draws
    onehot = torch.nn.functional.one_hot(s.ops, int(s.ops.max()) + 1).flatten(1).numpy()
    model = KernelRidge(alpha=0.1, kernel="rbf", gamma=0.2)
    model.fit(onehot[idx], (y - y.mean()) / (y.std() or 1.0))
    return model.predict(onehot)


Method = Callable[[SearchSpace, np.ndarray, np.ndarray, Signals], np.ndarray]


def methods(gcn: Callable[[np.ndarray, np.ndarray], np.ndarray] | None) -> dict[str, Method]:
    """Every ranking the benchmark compares, name -> f(space, idx, y, signals) -> scores.

    `gcn(idx, y)` fits the GCN ensemble and returns its whole-space scores (None: no GCN rows).
    Rows that need a zero-shot score are skipped by `run_draw` when there is none.
    """

    def ridge(sp, i, y, s):
        return _ridge(sp, i, y, s, prune=False)

    def live(sp, i, y, s):
        return _ridge(sp, i, y, s, prune=True)

    def zs(s):
        return next(iter(s.zero_shot.values()))

    rows: dict[str, Method] = {
        "ridge on one-hot ops": ridge,
        "kernel ridge (RBF)": lambda sp, i, y, s: _kernel_ridge(i, y, s),
        "live ridge": live,
        "params": lambda sp, i, y, s: s.params,
        "live params": lambda sp, i, y, s: s.live_params,
        "zero-shot": lambda sp, i, y, s: zs(s),
        "free vote(zero-shot, params)": lambda sp, i, y, s: rank_vote(
            {"z": zs(s), "p": s.params}
        ).numpy(),
        "vote(ridge, zero-shot, params)": lambda sp, i, y, s: rank_vote(
            {"r": ridge(sp, i, y, s), "z": zs(s), "p": s.params}
        ).numpy(),
        "free softmin(zero-shot, live params)": lambda sp, i, y, s: fuse(
            {"z": zs(s), "p": s.live_params}
        ),
        "fused: live ridge + live params": lambda sp, i, y, s: fuse(
            {"r": live(sp, i, y, s), "p": s.live_params}, trust="r"
        ),
        "fused: live ridge + zero-shot + live params": lambda sp, i, y, s: fuse(
            {"r": live(sp, i, y, s), "z": zs(s), "p": s.live_params}, trust="r"
        ),
        "fused, mean rule: live ridge + zero-shot + live params": lambda sp, i, y, s: fuse(
            {"r": live(sp, i, y, s), "z": zs(s), "p": s.live_params}, rule="mean", trust="r"
        ),
    }
    if gcn is not None:
        rows["fused, all weigh 1: GCN + zero-shot + live params"] = lambda sp, i, y, s: fuse(
            {"g": gcn(i, y), "z": zs(s), "p": s.live_params}
        )
        rows["GCN ensemble"] = lambda sp, i, y, s: gcn(i, y)
        rows["fused: GCN + live params"] = lambda sp, i, y, s: fuse(
            {"g": gcn(i, y), "p": s.live_params}, trust="g"
        )
        rows["fused: GCN + zero-shot + live params"] = lambda sp, i, y, s: fuse(
            {"g": gcn(i, y), "z": zs(s), "p": s.live_params}, trust="g"
        )
    return rows


def run_draw(
    space: SearchSpace,
    rows: Mapping[str, Method],
    idx: np.ndarray,
    y: np.ndarray,
    signals: Signals,
    truth: np.ndarray,
    classes: np.ndarray,
) -> dict[str, dict[str, float]]:
    """Every method's metrics for one draw of rows `idx` with measured accuracies `y`."""
    out = {}
    for name, method in rows.items():
        if "zero-shot" in name and not signals.zero_shot:
            continue
        out[name] = rank_metrics(np.asarray(method(space, idx, y, signals)), truth, classes)
    return out

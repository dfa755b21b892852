"""Whole-space ranking from real supernet accuracies: every method, same draws, one report.

    python scripts/benchmark_ranking.py samples=SUPERNET.csv truth=TRUTH.csv [features=zs.csv]

For each size n and draw d, n rows of `samples` (seed d) are the measured subnets; each method of
`predictor.benchmarks.methods.methods` ranks the whole space, scored against `truth` (Kendall,
Spearman, over classes, within the true top 10%, top-1 / top-10 true accuracy). Mean ± std over
draws.
"""

from __future__ import annotations

from typing import Any

import hydra
import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from predictor.benchmarks.common import (
    RANK_METRICS,
    mean_table,
    missing,
    rank_metrics,
    read_truth,
    skipped,
    write_report,
)
from predictor.benchmarks.methods import Fitter, Signals, make_signals, methods, run_draw
from predictor.io import read_features, read_target
from predictor.table import all_ops, cost_columns, predict_all
from supernet.classes import class_index
from supernet.space import SearchSpace

METRICS = RANK_METRICS


def gcn_fitter(cfg: DictConfig, space: SearchSpace) -> Fitter:
    """`f(idx, y)` -> the GCN ensemble's whole-space scores; remembers the last fit (several rows use it)."""
    ops, last = all_ops(space), {}

    def fit(idx: np.ndarray, y: np.ndarray) -> np.ndarray:
        key = idx.tobytes()
        if key not in last:
            gcn = hydra.utils.instantiate(cfg.gcn, space=space, seed=int(cfg.seed))
            gcn.fit(ops[idx], torch.tensor(y, dtype=torch.float))
            last.clear()
            last[key] = predict_all(gcn, space)
        return last[key]

    return fit


def markdown(summary: dict) -> str:
    """n x ranking -> mean ± std of every metric."""
    rows = [([str(n), name], m) for n, by_name in summary.items() for name, m in by_name.items()]
    return mean_table(("n", "ranking"), rows, METRICS)


def signals(cfg: DictConfig, space: SearchSpace, classes: np.ndarray) -> Signals:
    """Parameter counts of every arch and, with `features`, the zero-shot columns
    (`feature_columns`; the first is the "zero-shot" of the one-column rows)."""
    zero_shot = {}
    if cfg.features:
        names, values = read_features(cfg.features, space, list(cfg.feature_columns), classes)
        zero_shot = dict(zip(names, values.T))
    params = cost_columns(space, tuple(cfg.input_shape), int(cfg.num_classes))[:, 1]
    return make_signals(space, params, zero_shot)


def draws(cfg: DictConfig, space: SearchSpace, truth: np.ndarray) -> dict[int, list[dict]]:
    """n -> one metrics dict per draw (method -> metrics)."""
    classes = class_index(space)
    # what the methods fit and rank by: fit.py's `target` (a subnets.csv: -loss by default)
    _, archs, acc, _, _ = read_target(cfg.samples, space, cfg.get("target", "auto"))
    rows_idx = np.array([space.index(a) for a in archs])
    free = signals(cfg, space, classes)
    table = methods(gcn_fitter(cfg, space) if cfg.with_gcn else None)
    per_draw: dict[int, list[dict]] = {}
    for n in sorted({min(int(n), len(archs)) for n in cfg.sizes}):
        for d in range(int(cfg.draws)):
            pick = np.random.default_rng(d).choice(len(archs), n, replace=False)
            out = run_draw(space, table, rows_idx[pick], acc[pick], free, truth, classes)
            if len(archs) == space.size:  # the supernet's own ranking of every arch
                full = np.empty(space.size)
                full[rows_idx] = acc
                out = {"supernet (all archs)": rank_metrics(full, truth, classes), **out}
            per_draw.setdefault(n, []).append(out)
            print(
                f"n={n} draw {d}: " + ", ".join(f"{k} {v['kendall']:.3f}" for k, v in out.items()),
                flush=True,
            )
    return per_draw


def mean_std(draws: list[dict], name: str, key: str) -> tuple[float, float]:
    """Mean and std of one method's metric over draws."""
    values = [d[name][key] for d in draws]
    return float(np.mean(values)), float(np.std(values))


def run(cfg: DictConfig) -> dict:
    """All sizes and draws; writes JSON (every draw) and markdown (mean ± std)."""
    if skip := skipped(missing("truth", cfg.truth)):
        return skip
    space = hydra.utils.instantiate(cfg.space)
    per_draw = draws(cfg, space, read_truth(cfg.truth, space, cfg.truth_column))
    summary = {
        n: {name: {k: mean_std(ds, name, k) for k in METRICS} for name in ds[0]}
        for n, ds in per_draw.items()
    }
    config = OmegaConf.to_container(cfg, resolve=True)
    results = {"summary": summary, "draws": per_draw}
    return write_report(cfg.results_json, results, config, markdown(summary), cfg.results_md)


def report(cfg: DictConfig, out: dict[str, Any]) -> None:
    """The table and where it was written."""
    if "skipped" not in out:
        print(markdown(out["summary"]))
        print(f"-> {cfg.results_json}, {cfg.results_md}")

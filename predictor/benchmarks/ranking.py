"""Whole-space ranking from real supernet accuracies: every method, same draws, one report.

    python scripts/benchmark_ranking.py samples=SUPERNET.csv truth=TRUTH.csv [features=zs.csv]

For each size n and draw d, n rows of `samples` (seed d) are the measured subnets; each method of
`predictor.benchmark.methods` ranks the whole space, scored against `truth` (Kendall, Spearman,
over classes, within the true top 10%, top-1 / top-10 true accuracy). Mean ± std over draws.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hydra
import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from predictor.benchmark import (
    make_signals,
    methods,
    rank_metrics,
    read_truth,
    run_draw,
    write_report,
)
from predictor.fusion import class_index
from predictor.io import read_features, read_samples
from predictor.table import all_ops, cost_columns, predict_all

METRICS = ("kendall", "spearman", "kendall_classes", "kendall_top10", "top1", "top10")


def gcn_fitter(cfg: DictConfig, space) -> callable:
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
    head = "| n | ranking | " + " | ".join(METRICS) + " |"
    lines = [head, "|" + "---|" * (len(METRICS) + 2)]
    for n, rows in summary.items():
        for name, m in rows.items():
            cells = [f"{m[k][0]:.3f} ± {m[k][1]:.3f}" for k in METRICS]
            lines.append(f"| {n} | {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def run(cfg: DictConfig) -> dict:
    """All sizes and draws; writes JSON (every draw) and markdown (mean ± std)."""
    if not Path(cfg.truth).is_file():
        print(f"skipped: ground truth {cfg.truth} not found")
        return {"skipped": f"ground truth {cfg.truth} not found"}
    space = hydra.utils.instantiate(cfg.space)
    truth = read_truth(cfg.truth, space, cfg.truth_column)
    classes = class_index(space)
    archs, acc, _ = read_samples(cfg.samples, space)
    rows_idx = np.array([space.index(a) for a in archs])
    zero_shot = {}
    if cfg.features:
        names, values = read_features(cfg.features, space, [cfg.feature_column], classes)
        zero_shot = {names[0]: values[:, 0]}
    params = cost_columns(space, tuple(cfg.input_shape), int(cfg.num_classes))[:, 1]
    signals = make_signals(space, params, zero_shot)
    table = methods(gcn_fitter(cfg, space) if cfg.with_gcn else None)
    per_draw: dict[int, list[dict]] = {}
    for n in sorted({min(int(n), len(archs)) for n in cfg.sizes}):
        for d in range(int(cfg.draws)):
            pick = np.random.default_rng(d).choice(len(archs), n, replace=False)
            out = run_draw(space, table, rows_idx[pick], acc[pick], signals, truth, classes)
            if len(archs) == space.size:  # the supernet's own ranking of every arch
                full = np.empty(space.size)
                full[rows_idx] = acc
                out = {"supernet (all archs)": rank_metrics(full, truth, classes), **out}
            per_draw.setdefault(n, []).append(out)
            print(
                f"n={n} draw {d}: " + ", ".join(f"{k} {v['kendall']:.3f}" for k, v in out.items()),
                flush=True,
            )
    summary = {
        n: {
            name: {
                k: (
                    float(np.mean([d[name][k] for d in draws])),
                    float(np.std([d[name][k] for d in draws])),
                )
                for k in METRICS
            }
            for name in draws[0]
        }
        for n, draws in per_draw.items()
    }
    return write_report(
        cfg.results_json,
        cfg.results_md,
        {"summary": summary, "draws": per_draw},
        markdown(summary),
        OmegaConf.to_container(cfg, resolve=True),
    )


def report(cfg: DictConfig, out: dict[str, Any]) -> None:
    if "skipped" not in out:
        print(markdown(out["summary"]))
        print(f"-> {cfg.results_json}, {cfg.results_md}")

"""How well predictors fitted to noisy accuracies rank the whole NB201 space (CPU).

Draws `num_samples` random archs, adds Gaussian noise whose sigma makes the labels' Kendall tau
against the truth `target_tau` (solved over the whole space), fits each predictor, and scores the
full-space ranking (Kendall tau vs the truth over all 15,625 archs), mean ± std over seeds. Also times
fit + full table for `timing_samples` samples. The truth is read only here, by the scoring code.

    python scripts/benchmark_predictor.py [features=zeroshot.csv] [seeds=[0,1,2,3,4]]
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from scipy.optimize import brentq
from scipy.stats import kendalltau

from predictor.benchmark import read_truth, write_report
from predictor.io import read_features
from predictor.module import RidgePredictor
from predictor.stages.fit import plot_fit
from predictor.table import all_ops, cost_columns, predict_all, space_features


def kendall(pred: np.ndarray, truth: np.ndarray) -> float:
    """Kendall tau-b (ties handled) between two score vectors."""
    return float(kendalltau(pred, truth)[0])


def noise_sigma(truth: np.ndarray, target_tau: float, seed: int = 0) -> float:
    """The Gaussian noise sigma for which Kendall tau(truth + noise, truth) equals `target_tau`.

    Solved with one fixed noise draw over all of `truth` (so tau is monotone in sigma).
    """
    eps = np.random.default_rng(seed).standard_normal(len(truth))
    spread = float(truth.max() - truth.min()) or 1.0
    return float(
        brentq(
            lambda s: kendall(truth + s * eps, truth) - target_tau,
            1e-6 * spread,
            100 * spread,
            xtol=1e-4 * spread,
        )
    )


def mean_std(values: list[float]) -> tuple[float, float]:
    return float(np.mean(values)), float(np.std(values))


def markdown(results: dict) -> str:
    lines = ["| ranking | Kendall tau vs truth | over |", "|---|---|---|"]
    for name, r in results["rows"].items():
        lines.append(f"| {name} | {r['mean']:.3f} ± {r['std']:.3f} | {r['over']} |")
    t = results["timing"]
    lines.append("")
    lines.append(
        f"Fit + full table ({t['samples']} samples, {t['predictor']}): "
        f"{t['total_s']:.1f} s (fit {t['fit_s']:.1f} s, table {t['predict_s']:.1f} s)."
    )
    return "\n".join(lines) + "\n"


def run(cfg: DictConfig) -> dict:
    """Runs every row over every seed, then the timing; writes JSON and markdown.

    Returns:
        the results dict, or `{"skipped": reason}` when the truth file is absent.
    """
    if not Path(cfg.truth).is_file():
        msg = f"skipped: ground truth {cfg.truth} not found"
        print(msg)
        return {"skipped": msg}
    space = hydra.utils.instantiate(cfg.space)
    truth = read_truth(cfg.truth, space, cfg.truth_column)
    sigma = noise_sigma(truth, float(cfg.target_tau))
    ops = all_ops(space)
    costs = cost_columns(space, tuple(cfg.input_shape), int(cfg.num_classes))
    extra = None
    if cfg.features:
        extra = read_features(
            cfg.features, space, list(cfg.feature_columns) if cfg.feature_columns else None
        )
    names, u_all = space_features(costs, extra)
    with_u = "GCN + cost" + (" + " + ", ".join(extra[0]) if extra else "")
    taus: dict[str, list[float]] = {
        "noisy labels (sample)": [],
        "params": [],
        "ridge on one-hot ops": [],
        "GCN": [],
        with_u: [],
    }
    for seed in cfg.seeds:
        rng = np.random.default_rng(int(seed))
        idx = rng.choice(space.size, int(cfg.num_samples), replace=False)
        noisy = truth[idx] + rng.normal(0.0, sigma, len(idx))
        y = torch.tensor(noisy, dtype=torch.float)
        taus["noisy labels (sample)"].append(kendall(noisy, truth[idx]))
        taus["params"].append(kendall(costs[:, 1], truth))
        ridge = RidgePredictor(space, alpha=float(cfg.ridge_alpha))
        ridge.fit(ops[idx], y)
        taus["ridge on one-hot ops"].append(kendall(predict_all(ridge, space), truth))
        gcn = hydra.utils.instantiate(cfg.predictor, space=space, seed=int(seed))
        gcn.fit(ops[idx], y)
        pred = predict_all(gcn, space)
        taus["GCN"].append(kendall(pred, truth))
        plot_fit(
            Path(cfg.results_json).with_name(f"gcn_vs_truth_seed{seed}.png"),
            truth,
            pred,
            f"GCN from {len(idx)} noisy labels, seed {seed}: tau {taus['GCN'][-1]:.3f}",
            xlabel="true CIFAR-10 test acc (%)",
        )
        gcn = hydra.utils.instantiate(cfg.predictor, space=space, seed=int(seed))
        gcn.fit(ops[idx], y, u_all[idx])
        taus[with_u].append(kendall(predict_all(gcn, space, u_all), truth))
        print(
            f"seed {seed}: " + ", ".join(f"{k} {v[-1]:.3f}" for k, v in taus.items()), flush=True
        )

    over = {"noisy labels (sample)": f"the {cfg.num_samples} sampled archs"}
    rows = {
        k: dict(
            zip(("mean", "std"), mean_std(v)), values=v, over=over.get(k, f"all {space.size:,}")
        )
        for k, v in taus.items()
    }

    # timing: fit + whole table, default predictor, no features, as scripts/fit.py runs it
    rng = np.random.default_rng(0)
    idx = rng.choice(space.size, int(cfg.timing_samples), replace=False)
    y = torch.tensor(truth[idx] + rng.normal(0.0, sigma, len(idx)), dtype=torch.float)
    gcn = hydra.utils.instantiate(cfg.predictor, space=space)
    t0 = time.perf_counter()
    gcn.fit(ops[idx], y)
    t1 = time.perf_counter()
    predict_all(gcn, space)
    t2 = time.perf_counter()
    timing = {
        "samples": int(cfg.timing_samples),
        "predictor": cfg.predictor._target_,
        "fit_s": t1 - t0,
        "predict_s": t2 - t1,
        "total_s": t2 - t0,
    }

    results = {
        "rows": rows,
        "timing": timing,
        "sigma": sigma,
        "target_tau": float(cfg.target_tau),
        "feature_names": names,
    }
    results = write_report(
        cfg.results_json,
        cfg.results_md,
        results,
        markdown(results),
        OmegaConf.to_container(cfg, resolve=True),
    )
    return results


def report(cfg: DictConfig, out: dict[str, Any]) -> None:
    if "skipped" not in out:
        print(f"noise sigma {out['sigma']:.3f} (label tau {out['target_tau']})")
        print(markdown(out))
        print(f"-> {cfg.results_json}, {cfg.results_md}")

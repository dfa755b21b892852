"""How well predictors fitted to noisy accuracies rank the whole NB201 space (CPU).

Draws `num_samples` random archs, adds Gaussian noise whose sigma makes the labels' Kendall tau
against the truth `target_tau` (solved over the whole space), fits each predictor, and scores the
full-space ranking (Kendall tau vs the truth over all 15,625 archs), mean ± std over seeds. Also times
fit + full table for `timing_samples` samples. The truth is read only here, by the scoring code.

    python scripts/benchmark_predictor.py truth=nb201_cifar10.csv [features=zeroshot.csv] [seeds=[0,1,2]]
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from scipy.optimize import brentq
from scipy.stats import kendalltau

from predictor.benchmarks.common import missing, read_truth, skipped, write_report
from predictor.io import read_features
from predictor.module import RidgePredictor
from predictor.stages.fit import plot_fit
from predictor.table import all_ops, cost_columns, predict_all, space_features
from supernet.space import SearchSpace


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
    """One row per ranking (mean ± std of Kendall tau, and over which archs), then the timing."""
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


@dataclass
class Setup:
    """What every seed shares: the space, its truth, the label noise and the whole-space inputs.

    Attributes:
        ops: `(space.size, num_decisions)` every arch's op indices.
        costs: `(space.size, 2)` FLOPs and parameters (M) of every arch.
        features: `(space.size, F)` the "GCN + cost + ..." row's per-arch features, named `names`.
    """

    space: SearchSpace
    truth: np.ndarray
    sigma: float
    ops: torch.Tensor
    costs: np.ndarray
    names: list[str]
    features: torch.Tensor
    with_u: str  # the name of the row with features


def setup(cfg: DictConfig) -> Setup:
    """Reads the truth (and `features`), solves the noise sigma, builds the whole-space inputs."""
    space = hydra.utils.instantiate(cfg.space)
    truth = read_truth(cfg.truth, space, cfg.truth_column)
    costs = cost_columns(space, tuple(cfg.input_shape), int(cfg.num_classes))
    extra = None
    if cfg.features:
        columns = list(cfg.feature_columns) if cfg.feature_columns else None
        extra = read_features(cfg.features, space, columns)
    names, u_all = space_features(costs, extra)
    with_u = "GCN + cost" + (" + " + ", ".join(extra[0]) if extra else "")
    sigma = noise_sigma(truth, float(cfg.target_tau))
    return Setup(space, truth, sigma, all_ops(space), costs, names, u_all, with_u)


def one_seed(cfg: DictConfig, s: Setup, seed: int) -> dict[str, float]:
    """Every row's Kendall tau for one draw of `num_samples` noisy labels; plots the GCN's fit."""
    rng = np.random.default_rng(seed)
    idx = rng.choice(s.space.size, int(cfg.num_samples), replace=False)
    noisy = s.truth[idx] + rng.normal(0.0, s.sigma, len(idx))
    y = torch.tensor(noisy, dtype=torch.float)
    ridge = RidgePredictor(s.space, alpha=float(cfg.ridge_alpha))
    ridge.fit(s.ops[idx], y)
    gcn = hydra.utils.instantiate(cfg.predictor, space=s.space, seed=seed)
    gcn.fit(s.ops[idx], y)
    pred = predict_all(gcn, s.space)
    taus = {
        "noisy labels (sample)": kendall(noisy, s.truth[idx]),
        "params": kendall(s.costs[:, 1], s.truth),
        "ridge on one-hot ops": kendall(predict_all(ridge, s.space), s.truth),
        "GCN": kendall(pred, s.truth),
    }
    title = f"GCN from {len(idx)} noisy labels, seed {seed}: tau {taus['GCN']:.3f}"
    png = Path(cfg.results_json).with_name(f"gcn_vs_truth_seed{seed}.png")
    plot_fit(png, s.truth, pred, title, xlabel="true CIFAR-10 test acc (%)")
    gcn = hydra.utils.instantiate(cfg.predictor, space=s.space, seed=seed)
    gcn.fit(s.ops[idx], y, s.features[idx])
    taus[s.with_u] = kendall(predict_all(gcn, s.space, s.features), s.truth)
    print(f"seed {seed}: " + ", ".join(f"{k} {v:.3f}" for k, v in taus.items()), flush=True)
    return taus


def timing(cfg: DictConfig, s: Setup) -> dict[str, Any]:
    """Fit + whole table of the default predictor, no features, as the fit stage runs it."""
    rng = np.random.default_rng(0)
    idx = rng.choice(s.space.size, int(cfg.timing_samples), replace=False)
    y = torch.tensor(s.truth[idx] + rng.normal(0.0, s.sigma, len(idx)), dtype=torch.float)
    gcn = hydra.utils.instantiate(cfg.predictor, space=s.space)
    t0 = time.perf_counter()
    gcn.fit(s.ops[idx], y)
    t1 = time.perf_counter()
    predict_all(gcn, s.space)
    t2 = time.perf_counter()
    return {
        "samples": int(cfg.timing_samples),
        "predictor": cfg.predictor._target_,
        "fit_s": t1 - t0,
        "predict_s": t2 - t1,
        "total_s": t2 - t0,
    }


def run(cfg: DictConfig) -> dict:
    """Runs every row over every seed, then the timing; writes JSON and markdown.

    Returns:
        the results dict, or `{"skipped": reason}` when the truth is not given or absent.
    """
    if skip := skipped(missing("truth", cfg.truth)):
        return skip
    s = setup(cfg)
    per_seed = [one_seed(cfg, s, int(seed)) for seed in cfg.seeds]
    over = {"noisy labels (sample)": f"the {cfg.num_samples} sampled archs"}
    rows = {}
    for name in per_seed[0]:
        values = [taus[name] for taus in per_seed]
        mean, std = mean_std(values)
        rows[name] = {"mean": mean, "std": std, "values": values}
        rows[name]["over"] = over.get(name, f"all {s.space.size:,}")
    results = {
        "rows": rows,
        "timing": timing(cfg, s),
        "sigma": s.sigma,
        "target_tau": float(cfg.target_tau),
        "feature_names": s.names,
    }
    config = OmegaConf.to_container(cfg, resolve=True)
    return write_report(cfg.results_json, results, config, markdown(results), cfg.results_md)


def report(cfg: DictConfig, out: dict[str, Any]) -> None:
    """The noise, the table and where it was written."""
    if "skipped" not in out:
        print(f"noise sigma {out['sigma']:.3f} (label tau {out['target_tau']})")
        print(markdown(out))
        print(f"-> {cfg.results_json}, {cfg.results_md}")

"""Fit the predictor to measured subnet accuracies; write the checkpoint, the whole-space lookup
table (best first), a fit plot and metrics.

    python scripts/fit.py samples=subnets.csv [table=table.csv] [features=zeroshot.csv]
        [use_cost_features=true] [predictor=ridge] [input_shape=[1,8,8]]
        [vote_with=[wrcor,params_M]] [vote_rule=softmin|mean]

The table ranks by the fusion (`predictor.fusion.fuse`: by default a soft minimum of normal scores)
of the prediction and the `vote_with` columns: the features CSV's, or flops_M / params_M of what each
cell computes (dead ops cost nothing), each higher-is-better; the prediction stays in a `predicted`
column. The default `vote_with=auto` takes params_M and the `wrcor` column of `features` (every
zero-shot column but params / flops / vote when it has none); `vote_with=[]` ranks by the
prediction alone.
A features CSV needs one row per class of archs that compute the same function.

A space too large to list (`space.enumerable` false: the 20-layer chain) gets the checkpoint, plot
and metrics but no table; scripts/search.py searches it with the checkpoint.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from scipy.stats import kendalltau

from predictor.fusion import RULES, class_index, fuse_weighted, live_index
from predictor.io import (
    DataError,
    atomic_savefig,
    atomic_write_json,
    check_writable,
    file_sha256,
    git_hash,
    read_features,
    read_samples,
)
from predictor.table import (
    config_hash,
    cost_columns,
    predict_all,
    save_checkpoint,
    space_features,
    table_rows,
    write_table,
)
from supernet.latency import LatencyTable
from supernet.space import SearchSpace


def plot_fit(
    path: str | Path,
    acc: np.ndarray,
    pred: np.ndarray,
    title: str,
    xlabel: str = "measured acc (%)",
) -> Path:
    """Predicted score against measured accuracy (the training samples, or a benchmark's truth)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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


def refuse_features(cfg: DictConfig, space_size: int) -> None:
    """Per-arch features are standardised over the whole space, and an arch never sampled would
    need them too: a space too large to list has neither."""
    for key, value in (("use_cost_features", cfg.use_cost_features), ("features", cfg.features)):
        if value:
            raise DataError(
                f"{key}={value}: per-arch features are rank-standardised over every arch of the "
                f"space, and this space has {space_size:.3g} archs (too many to list); fit "
                f"without {key}"
            )


AUTO_SKIP = ("params", "flops", "vote")


def vote_columns(
    cfg: DictConfig,
    space: SearchSpace,
    costs: np.ndarray | None,
    features: tuple[list[str], np.ndarray] | None,
) -> dict[str, np.ndarray]:
    """The whole-space columns named by `vote_with`, checked before anything is fitted."""
    wanted = cfg.get("vote_with") or []
    if wanted == "auto":  # the best fusion measured for these inputs (BENCHMARKS.md)
        if costs is None:
            return {}
        # WRCor is the zero-shot score measured in the fusion; other proxies when it is absent.
        # params / flops count dead ops, and a `vote` column averages them in again
        zero_shot = [c for c in (features[0] if features else []) if c not in AUTO_SKIP]
        wanted = ["params_M", *(["wrcor"] if "wrcor" in zero_shot else zero_shot)]
    wanted = list(wanted)
    if not wanted:
        return {}
    if costs is None:
        raise DataError(
            f"vote_with={wanted}: a vote ranks every arch of the space, and this space is too "
            "large to list; search it without vote_with"
        )
    live = costs[live_index(space)]  # a cell pays for what it computes: dead ops cost nothing
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


def read_latency(cfg: DictConfig, space: SearchSpace) -> LatencyTable | None:
    """The latency table of `latency_table=FILE`, checked against the space before anything is
    fitted or written (None without one)."""
    if not cfg.get("latency_table"):
        return None
    try:
        table = LatencyTable.load(cfg.latency_table)
    except (FileNotFoundError, TypeError, ValueError, KeyError) as err:
        raise DataError(
            f"latency_table={cfg.latency_table}: not a latency table of scripts/latency.py "
            f"({type(err).__name__}: {err})"
        ) from None
    if table.space != space.name or len(table.op_ms) != space.num_decisions:
        raise DataError(
            f"latency_table={cfg.latency_table}: measured for space {table.space!r} with "
            f"{len(table.op_ms)} layers; this space is {space.name!r} with {space.num_decisions}"
        )
    return table


def check_finite(values: np.ndarray, name_of: Callable[[int], str], samples: str) -> None:
    """A diverged fit: say so, and write nothing."""
    bad = ~np.isfinite(values)
    if bad.any():
        raise FloatingPointError(
            f"the fitted predictor gave {int(bad.sum())} non-finite scores (first: "
            f"{name_of(int(np.flatnonzero(bad)[0]))}); nothing written. Lower predictor.lr or "
            f"check {samples}"
        )


def run(cfg: DictConfig) -> dict:
    """Reads samples (and features), fits, predicts every arch, writes the outputs.

    Returns:
        metrics (`fit/*`), output paths (`table` None for a space too large to list), the
        predictor, and the table's first rows (none without a table).
    """
    start = time.perf_counter()
    space = hydra.utils.instantiate(cfg.space)
    tabulate = space.enumerable
    if not tabulate:
        refuse_features(cfg, space.size)
    # everything is read and validated before anything is written
    archs, acc, counts = read_samples(cfg.samples, space)
    if len(archs) < 2:
        raise DataError(f"{cfg.samples}: {len(archs)} distinct arch(s); fitting needs at least 2")
    costs = cost_columns(space, tuple(cfg.input_shape), int(cfg.num_classes)) if tabulate else None
    extra = None
    if cfg.features:
        cols = list(cfg.feature_columns) if cfg.feature_columns else None
        extra = read_features(cfg.features, space, cols, class_index(space) if tabulate else None)
    voters = vote_columns(cfg, space, costs, extra)
    if voters and cfg.vote_rule not in RULES:
        raise DataError(f"vote_rule={cfg.vote_rule!r}; expected one of {list(RULES)}")
    latency = read_latency(cfg, space)
    outputs = [cfg.checkpoint, cfg.plot, cfg.metrics] + ([cfg.table] if tabulate else [])
    check_writable(outputs)
    names, u_all = space_features(costs if cfg.use_cost_features else None, extra)
    idx = torch.tensor([space.index(a) for a in archs])
    ops = torch.tensor(archs, dtype=torch.long)
    u = None if u_all is None else u_all[idx]

    predictor = hydra.utils.instantiate(cfg.predictor, space=space)
    metrics = {"fit/samples": len(archs), "fit/rows": int(counts.sum()), "fit/features": names}
    t0 = time.perf_counter()
    metrics.update(predictor.fit(ops, torch.tensor(acc, dtype=torch.float), u))
    metrics["fit/fit_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    if tabulate:
        scores = predict_all(predictor, space, u_all, int(cfg.predict_batch_size))
        check_finite(scores, lambda i: space.to_str(space.from_index(i)), cfg.samples)
        train_pred = scores[idx.numpy()]
    else:  # no table: only the samples are predicted
        train_pred = predictor.predict(ops, u, batch_size=int(cfg.predict_batch_size)).numpy()
        train_pred = train_pred.astype(np.float64)
        check_finite(train_pred, lambda i: space.to_str(archs[i]), cfg.samples)
    metrics["fit/predict_s"] = time.perf_counter() - t0
    metrics["fit/train_tau"] = float(kendalltau(train_pred, acc)[0])

    config = OmegaConf.to_container(cfg, resolve=True)
    sha, git = file_sha256(cfg.samples), git_hash()
    measured = {a: (float(m), int(c)) for a, m, c in zip(archs, acc, counts)}
    # fit.json, the provenance record, goes first and comes back last: a run killed in between
    # leaves outputs without a record, never this run's outputs beside another run's record
    Path(cfg.metrics).unlink(missing_ok=True)
    save_checkpoint(cfg.checkpoint, predictor, space, config, names, u_all, sha, git)
    rows = []
    if tabulate:
        final = scores
        if voters:  # the table ranks by the vote; the prediction stays beside it
            columns = {"predicted": scores, **voters}
            final, metrics["fit/trust"] = fuse_weighted(
                columns, cfg.vote_rule, float(cfg.vote_beta), trust="predicted"
            )
            metrics["fit/vote_with"] = list(voters)
            metrics["fit/vote_rule"] = cfg.vote_rule
        rows = table_rows(space, final, costs, measured)
        row_archs = (
            [space.parse(row[1]) for row in rows] if voters or cfg.get("latency_table") else []
        )
        extra = []
        if voters:
            for row, arch in zip(rows, row_archs):
                row.append(f"{scores[space.index(arch)]:.6g}")
            extra = ["predicted"]
        if latency is not None:  # measured on the target device by scripts/latency.py
            for row, arch in zip(rows, row_archs):
                row.append(f"{latency.arch_ms(space, arch):.6g}")
            extra.append("latency_ms")
        write_table(cfg.table, rows, extra)
    plot_fit(
        cfg.plot,
        acc,
        train_pred,
        f"{len(archs)} samples, Kendall tau {metrics['fit/train_tau']:.3f} (training data)"
        + (
            f", {metrics['fit/heldout_tau']:.3f} (held-out rows)"
            if np.isfinite(metrics.get("fit/heldout_tau", np.nan))
            else ""
        ),
    )
    metrics["fit/total_s"] = time.perf_counter() - start
    atomic_write_json(
        cfg.metrics,
        {
            "metrics": metrics,
            "config": config,
            "git": git,
            "samples_sha256": sha,
            "hash": config_hash(sha, config),
        },
    )
    return {
        "metrics": metrics,
        "table": str(cfg.table) if tabulate else None,
        "checkpoint": str(cfg.checkpoint),
        "plot": str(cfg.plot),
        "predictor": predictor,
        "top": rows[:10],
    }


def report(cfg: DictConfig, out: dict[str, Any]) -> None:
    m = out["metrics"]
    where = f"table -> {out['table']}"
    if out["table"] is None:
        where = f"no table (space too large): nas-search checkpoint={out['checkpoint']}"
    print(
        f"fitted {m['fit/samples']} archs in {m['fit/fit_s']:.1f} s "
        f"(train tau {m['fit/train_tau']:.3f}); {where}"
    )
    for row in out["top"][:5]:
        print("  ", *row[:4])

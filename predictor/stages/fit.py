"""Fit the predictor to measured subnets; write the checkpoint, the whole-space lookup table (best
first), a fit plot and metrics.

    python scripts/fit.py samples=subnets.csv [table=table.csv] [features=zeroshot.csv]
        [target=auto|acc|loss] [use_cost_features=true] [predictor=ridge] [input_shape=[1,8,8]]
        [vote_with=[wrcor,params_M]] [vote_rule=softmin|mean]

The predictor is fitted to each subnet's held-out loss (as -loss) when the samples have a `loss`
column, as every `subnets.csv` does, and to its accuracy otherwise (`target`, `read_target`): on the
lab's CIFAR-10 supernets the loss ranked better than the accuracy on the same images. The table's
`acc` column is the measured accuracy either way.

The table ranks by the fusion (`predictor.fusion.fuse`: by default a soft minimum of normal scores)
of the prediction and the `vote_with` columns: the features CSV's, or flops_M / params_M of what each
cell computes (dead ops cost nothing), each higher-is-better; the prediction stays in a `predicted`
column. The default `vote_with=auto` takes the `wrcor` and `meco` columns of `features` when it
has both, else params_M and whichever of them it has (every zero-shot column but params / flops /
vote when it has neither); `vote_with=[]` ranks by the prediction alone. The prediction weighs
by its agreement with those columns, squared (`fit/trust`); with three or more columns, so does
each of the others (`fit/weights`).
A features CSV needs one row per class of archs that compute the same function.

A space too large to list (`space.enumerable` false: the 20-layer chain) gets the checkpoint, plot
and metrics but no table; scripts/search.py searches it with the checkpoint.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from scipy.stats import kendalltau

from predictor.budgets import read_latency_table
from predictor.fusion import RULES, fuse_weighted, vote_columns
from predictor.io import check_writable, output_digest, read_features, read_target
from predictor.module import GCNPredictor, RidgePredictor
from predictor.plots import plot_fit
from predictor.table import (
    check_finite,
    config_hash,
    cost_columns,
    predict_all,
    predict_archs,
    save_checkpoint,
    space_features,
    table_rows,
    write_table,
)
from supernet.classes import class_index
from supernet.latency import LatencyTable
from supernet.space import Arch, SearchSpace
from supernet.utils import DataError, atomic_write_json, file_sha256, git_hash

log = logging.getLogger(__name__)
TARGET_NAMES = {"acc": "accuracy (%)", "loss": "-loss"}  # what `fit.target` fits, in words


@dataclass
class FitInputs:
    """Everything a fit reads, validated before anything is written.

    Attributes:
        target: what the predictor is fitted to, `acc` or `loss` (`read_target`).
        archs, y, counts: the distinct archs, their mean target (higher is better: accuracy in
            percent, or -loss) and rows each.
        acc: their mean measured accuracy, the table's `acc` column (None: a loss-only file).
        costs: `cost_columns` of a listable space (None: no table).
        features: `read_features`' names and whole-space values (None without `features=`).
        voters: `vote_columns`, the table's fused columns besides the prediction.
        latency: the `latency_table=` (None without one): a latency_ms column of the table.

    Shapes:
        y, counts, acc `(n,)`; costs `(space.size, 2)`; each voter `(space.size,)`.
    """

    target: str
    archs: list[Arch]
    y: np.ndarray
    counts: np.ndarray
    acc: np.ndarray | None
    costs: np.ndarray | None
    features: tuple[list[str], np.ndarray] | None
    voters: dict[str, np.ndarray]
    latency: LatencyTable | None


@dataclass
class Fitted:
    """The fitted predictor, its `fit/*` metrics, the features it saw and what it predicted.

    Shapes:
        u `(space.size, F)` or None; scores `(space.size,)` (None: no table); train_pred `(n,)`.
    """

    predictor: GCNPredictor | RidgePredictor
    metrics: dict[str, Any]
    feature_names: list[str]
    u: torch.Tensor | None
    scores: np.ndarray | None
    train_pred: np.ndarray


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


def read_inputs(cfg: DictConfig, space: SearchSpace) -> FitInputs:
    """Reads and checks every input, and that every output can be written, before any work."""
    tabulate = space.enumerable
    if not tabulate:
        refuse_features(cfg, space.size)
    target, archs, y, counts, acc = read_target(cfg.samples, space, cfg.get("target", "auto"))
    if len(archs) < 2:
        raise DataError(f"{cfg.samples}: {len(archs)} distinct arch(s); fitting needs at least 2")
    costs = cost_columns(space, tuple(cfg.input_shape), int(cfg.num_classes)) if tabulate else None
    features = None
    if cfg.features:
        cols = list(cfg.feature_columns) if cfg.feature_columns else None
        classes = class_index(space) if tabulate else None
        features = read_features(cfg.features, space, cols, classes)
    voters = vote_columns(cfg.get("vote_with"), space, costs, features)
    if voters and cfg.vote_rule not in RULES:
        raise DataError(f"vote_rule={cfg.vote_rule!r}; expected one of {list(RULES)}")
    latency = read_latency_table(cfg.latency_table, space) if cfg.get("latency_table") else None
    check_writable([cfg.checkpoint, cfg.plot, cfg.metrics] + ([cfg.table] if tabulate else []))
    return FitInputs(target, archs, y, counts, acc, costs, features, voters, latency)


def fit_predictor(cfg: DictConfig, space: SearchSpace, inputs: FitInputs) -> Fitted:
    """Fits `cfg.predictor` to the samples and predicts every arch (a listable space) or the
    samples alone; refuses a diverged fit."""
    names, u = space_features(inputs.costs if cfg.use_cost_features else None, inputs.features)
    batch, n = int(cfg.predict_batch_size), len(inputs.archs)
    predictor = hydra.utils.instantiate(cfg.predictor, space=space)
    metrics = {"fit/samples": n, "fit/rows": int(inputs.counts.sum()), "fit/features": names}
    metrics["fit/target"] = inputs.target
    log.info(
        f"fitting {type(predictor).__name__} to the {TARGET_NAMES[inputs.target]} of {n} archs "
        f"({metrics['fit/rows']} rows)" + (f", features {names}" if names else "")
    )
    t0 = time.perf_counter()
    ops = torch.tensor(inputs.archs, dtype=torch.long)
    u_train = None if u is None else u[torch.tensor([space.index(a) for a in inputs.archs])]
    metrics.update(predictor.fit(ops, torch.tensor(inputs.y, dtype=torch.float), u_train))
    metrics["fit/fit_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    scores = None
    if inputs.costs is not None:
        scores = predict_all(predictor, space, u, batch)
        check_finite(scores, lambda i: space.to_str(space.from_index(i)), cfg.samples)
        train_pred = scores[[space.index(a) for a in inputs.archs]]
    else:  # no table: only the samples are predicted
        train_pred = predict_archs(predictor, space, inputs.archs, u, batch)
        check_finite(train_pred, lambda i: space.to_str(inputs.archs[i]), cfg.samples)
    metrics["fit/predict_s"] = time.perf_counter() - t0
    metrics["fit/train_tau"] = float(kendalltau(train_pred, inputs.y)[0])
    return Fitted(predictor, metrics, names, u, scores, train_pred)


def write_lookup_table(
    cfg: DictConfig, space: SearchSpace, inputs: FitInputs, fitted: Fitted
) -> list[list[Any]]:
    """The table, ranked by the vote of the prediction and `voters` (the prediction alone without
    them), with the prediction and latency beside; the vote's weights go into the metrics."""
    assert fitted.scores is not None and inputs.costs is not None
    final, extra = fitted.scores, {}
    if inputs.voters:  # the table ranks by the vote; the prediction stays beside it
        columns = {"predicted": fitted.scores, **inputs.voters}
        final, weights = fuse_weighted(
            columns, cfg.vote_rule, float(cfg.vote_beta), trust="predicted"
        )
        fitted.metrics["fit/trust"] = weights["predicted"]
        fitted.metrics["fit/weights"] = weights
        fitted.metrics["fit/vote_with"] = list(inputs.voters)
        fitted.metrics["fit/vote_rule"] = cfg.vote_rule
        extra["predicted"] = fitted.scores
    if inputs.latency is not None:  # measured on the target device by scripts/latency.py
        extra["latency_ms"] = np.array(
            [inputs.latency.arch_ms(space, a) for a in space.all_archs()]
        )
    # a loss-only file leaves the acc column blank; the counts are still the rows measured
    accs = [""] * len(inputs.archs) if inputs.acc is None else inputs.acc.tolist()
    measured = {a: (m, int(c)) for a, m, c in zip(inputs.archs, accs, inputs.counts)}
    rows = table_rows(space, final, inputs.costs, measured, extra)
    write_table(cfg.table, rows, list(extra))
    return rows


def fit_title(metrics: dict[str, Any]) -> str:
    """The fit plot's title: samples and the training (and held-out) Kendall tau."""
    heldout = metrics.get("fit/heldout_tau", np.nan)
    return (
        f"{metrics['fit/samples']} samples, Kendall tau {metrics['fit/train_tau']:.3f} (training "
        "data)" + (f", {heldout:.3f} (held-out rows)" if np.isfinite(heldout) else "")
    )


def run(cfg: DictConfig) -> dict:
    """Reads samples (and features), fits, predicts every arch, writes the outputs.

    Returns:
        metrics (`fit/*`), output paths (`table` None for a space too large to list), the
        predictor, and the table's first rows (none without a table).
    """
    start = time.perf_counter()
    space = hydra.utils.instantiate(cfg.space)
    inputs = read_inputs(cfg, space)  # everything is read and validated before anything is written
    fitted = fit_predictor(cfg, space, inputs)
    config = OmegaConf.to_container(cfg, resolve=True)
    sha, git = file_sha256(cfg.samples), git_hash()
    # fit.json, the provenance record, goes first and comes back last: a run killed in between
    # leaves outputs without a record, never this run's outputs beside another run's record
    Path(cfg.metrics).unlink(missing_ok=True)
    save_checkpoint(
        cfg.checkpoint, fitted.predictor, space, config, fitted.feature_names, fitted.u, sha, git
    )
    rows = write_lookup_table(cfg, space, inputs, fitted) if fitted.scores is not None else []
    xlabel = f"measured {TARGET_NAMES[inputs.target]}"
    plot_fit(cfg.plot, inputs.y, fitted.train_pred, fit_title(fitted.metrics), xlabel=xlabel)
    metrics = {**fitted.metrics, "fit/total_s": time.perf_counter() - start}
    outputs = {"checkpoint": output_digest(cfg.checkpoint)}
    if fitted.scores is not None:
        outputs["table"] = output_digest(cfg.table)
    record = {"metrics": metrics, "config": config, "git": git, "samples_sha256": sha}
    record["outputs"] = outputs  # readers check their file against it (check_fit_record)
    record["space"] = {"name": space.name, "config": space.config()}  # query builds it from here
    atomic_write_json(cfg.metrics, {**record, "hash": config_hash(sha, config)})
    return {
        "metrics": metrics,
        "table": str(cfg.table) if fitted.scores is not None else None,
        "checkpoint": str(cfg.checkpoint),
        "plot": str(cfg.plot),
        "predictor": fitted.predictor,
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

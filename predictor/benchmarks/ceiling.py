"""How far fusing a supernet with free signals can go, and where the rest of the ranking lies.

    python scripts/benchmark_ceiling.py samples=SUPERNET_ALL.csv truth=TRUTH.csv [features=zs.csv]

`samples` holds a supernet's accuracy for *every* arch: what a perfect fit of its sampled rows
could at best recover. Rows (Kendall / Spearman over all archs, per class, top 10%, top-1/10):
- the supernet, its class means (archs that compute the same function averaged) and their ridge
  projection onto the live one-hot ops (the smoothest additive model of them);
- the soft-minimum fusion (`predictor.fusion.fuse`) of the class-mean supernet with live params,
  and with the zero-shot column when `features` is given; the free fusion without the supernet;
- oracles: ridge fits *to the truth* of live op counts, live one-hot ops, one-hot plus pairwise
  products, and the supernet's rank plus op counts. They use the truth, so they are not methods:
  they bound what a model of those inputs can rank, and show which structure the supernet misses.
It also reports each op's correlation, over archs, of its live count with the truth's and the
supernet's normal scores: where the supernet's bias sits.
"""

from __future__ import annotations

from typing import Any

import hydra
import numpy as np
from omegaconf import DictConfig, OmegaConf

from predictor.benchmarks import common
from predictor.fusion import fuse, normal_scores
from predictor.io import read_features
from predictor.table import cost_columns
from supernet.classes import class_index, live_index, prune_dead
from supernet.proxies.vote import rank_vote
from supernet.space import SearchSpace


def live_ops(space: SearchSpace) -> tuple[np.ndarray, np.ndarray]:
    """Every arch's pruned ops (dead ops -> `none`) one-hot per decision, and their counts per op.

    Shapes:
        `(space.size, num_decisions * len(ops))` and `(space.size, len(ops))`, float64.
    """
    pruned = np.array([prune_dead(space, a) for a in space.all_archs()])
    k = len(space.ops)
    onehot = np.zeros((len(pruned), pruned.shape[1] * k))
    for d in range(pruned.shape[1]):
        onehot[np.arange(len(pruned)), d * k + pruned[:, d]] = 1.0
    counts = onehot.reshape(len(pruned), pruned.shape[1], k).sum(axis=1)
    return onehot, counts


def ridge_projection(x: np.ndarray, y: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """The ridge fit of `y` on `x` (with an intercept), evaluated on `x`.

    Shapes:
        x `(n, F)`, y `(n,)` -> `(n,)`.
    """
    x1 = np.column_stack([x, np.ones(len(x))])
    coef = np.linalg.solve(x1.T @ x1 + alpha * np.eye(x1.shape[1]), x1.T @ y)
    return x1 @ coef


def class_mean(values: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Each arch's value replaced by the mean of its class."""
    _, inverse = np.unique(classes, return_inverse=True)
    return (np.bincount(inverse, values) / np.bincount(inverse))[inverse]


def method_rows(
    supernet: np.ndarray,
    classes: np.ndarray,
    onehot: np.ndarray,
    zero_shot: dict[str, np.ndarray],
    live_params: np.ndarray,
    params: np.ndarray,
) -> dict[str, np.ndarray]:
    """What a ranking can make of the whole supernet and the free signals (no truth used), beside
    the free baseline: the rank vote of the first zero-shot column and params as written. With two
    or more zero-shot columns, rows with every one of them too."""
    s = class_mean(supernet, classes)
    rows = {
        "supernet": supernet,
        "supernet, class means": s,
        "supernet, ridge on live one-hot": ridge_projection(onehot, s),
        "softmin(supernet, live params)": fuse({"s": s, "p": live_params}),
    }
    if zero_shot:
        z = next(iter(zero_shot.values()))
        rows["free vote(zero-shot, params)"] = rank_vote({"z": z, "p": params}).numpy()
        rows["free softmin(zero-shot, live params)"] = fuse({"z": z, "p": live_params})
        rows["softmin(supernet, zero-shot, live params)"] = fuse(
            {"s": s, "z": z, "p": live_params}
        )
    if len(zero_shot) > 1:
        every = {f"z:{name}": v for name, v in zero_shot.items()}
        rows["free softmin(every zero-shot, live params)"] = fuse({**every, "p": live_params})
        rows["softmin(supernet, every zero-shot, live params)"] = fuse(
            {"s": s, **every, "p": live_params}
        )
    return rows


def oracle_rows(
    truth: np.ndarray, supernet: np.ndarray, onehot: np.ndarray, counts: np.ndarray
) -> dict[str, np.ndarray]:
    """Ridge fits to the truth's normal scores: bounds of what each input set can rank."""
    zt = normal_scores(truth)
    pairs = np.einsum("ni,nj->nij", onehot, onehot).reshape(len(onehot), -1)
    with_supernet = np.column_stack([normal_scores(supernet), counts])
    return {
        "oracle: live op counts": ridge_projection(counts, zt),
        "oracle: live one-hot ops": ridge_projection(onehot, zt),
        "oracle: live one-hot + pairs": ridge_projection(np.column_stack([onehot, pairs]), zt, 10),
        "oracle: supernet + live op counts": ridge_projection(with_supernet, zt),
    }


def op_bias(
    space: SearchSpace, counts: np.ndarray, truth: np.ndarray, supernet: np.ndarray
) -> dict[str, dict[str, float]]:
    """Per op, the correlation of its live count with the truth's and the supernet's normal
    scores: an op the truth rewards more than the supernet does is one it under-rates."""
    zt, zs = normal_scores(truth), normal_scores(supernet)
    out = {}
    for k, op in enumerate(space.ops):
        if counts[:, k].std() > 0:
            c = counts[:, k]
            out[op] = {
                "truth": float(np.corrcoef(c, zt)[0, 1]),
                "supernet": float(np.corrcoef(c, zs)[0, 1]),
            }
    return out


def free_signals(
    cfg: DictConfig, space: SearchSpace, classes: np.ndarray
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """With `features`, its `feature_columns` (class-filled; none without); the live params and
    the params of every arch as written."""
    params = cost_columns(space, tuple(cfg.input_shape), int(cfg.num_classes))[:, 1]
    zero_shot = {}
    if cfg.features:
        names, values = read_features(cfg.features, space, list(cfg.feature_columns), classes)
        zero_shot = dict(zip(names, values.T))
    return zero_shot, params[live_index(space)], params


def markdown(result: dict[str, Any]) -> str:
    """The rows, then the per-op correlations."""
    rows = [([name], {k: (v, 0.0) for k, v in m.items()}) for name, m in result["rows"].items()]
    text = common.mean_table(("ranking",), rows, common.RANK_METRICS).replace(" ± 0.000", "")
    lines = ["| op | corr(live count, truth) | corr(live count, supernet) |", "|---|---|---|"]
    lines += [
        f"| {op} | {c['truth']:+.3f} | {c['supernet']:+.3f} |"
        for op, c in result["op_bias"].items()
    ]
    return text + "\n" + "\n".join(lines) + "\n"


def run(cfg: DictConfig) -> dict[str, Any]:
    """Every row against the truth; writes JSON and markdown."""
    if skip := common.skipped(common.missing("truth", cfg.truth)):
        return skip
    space = hydra.utils.instantiate(cfg.space)
    truth = common.read_truth(cfg.truth, space, cfg.truth_column)
    supernet = common.read_truth(cfg.samples, space, cfg.samples_column)  # every arch, or refused
    classes = class_index(space)
    onehot, counts = live_ops(space)
    rows = method_rows(supernet, classes, onehot, *free_signals(cfg, space, classes))
    rows.update(oracle_rows(truth, supernet, onehot, counts))
    result = {
        "rows": {name: common.rank_metrics(score, truth, classes) for name, score in rows.items()},
        "op_bias": op_bias(space, counts, truth, supernet),
    }
    config = OmegaConf.to_container(cfg, resolve=True)
    return common.write_report(cfg.results_json, result, config, markdown(result), cfg.results_md)


def report(cfg: DictConfig, out: dict[str, Any]) -> None:
    """The table and where it was written."""
    if "skipped" not in out:
        print(markdown(out))
        print(f"-> {cfg.results_json}, {cfg.results_md}")

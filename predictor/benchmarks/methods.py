"""The whole-space rankings `benchmark_ranking` compares (no hydra here).

A *samples file* (`arch,acc`, e.g. a published supernet's accuracy for every arch, or a
`subnets.csv` of our own) plays the measured subnets: `n` rows are drawn, every method ranks the
whole space from them (and from free whole-space signals), and each ranking is scored against a
ground truth by `common.rank_metrics`. No method sees the truth.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.kernel_ridge import KernelRidge

from predictor.benchmarks.common import rank_metrics
from predictor.fusion import fuse
from predictor.module import RidgePredictor
from predictor.table import all_ops, predict_all
from supernet.classes import live_index
from supernet.proxies.vote import rank_vote
from supernet.space import SearchSpace


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

    @property
    def zs(self) -> np.ndarray:
        """The first zero-shot score (`feature_columns`' first)."""
        return next(iter(self.zero_shot.values()))


def make_signals(
    space: SearchSpace, params: np.ndarray, zero_shot: Mapping[str, np.ndarray]
) -> Signals:
    """The free signals of `space` from every arch's parameter count and zero-shot scores."""
    return Signals(params, params[live_index(space)], dict(zero_shot), all_ops(space))


Method = Callable[[SearchSpace, np.ndarray, np.ndarray, Signals], np.ndarray]
Fitter = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _ridge(prune: bool) -> Method:
    """Ridge on one-hot ops (alpha 1), on the archs as written or (`prune`) on what they compute."""

    def method(space: SearchSpace, idx: np.ndarray, y: np.ndarray, s: Signals) -> np.ndarray:
        pred = RidgePredictor(space, alpha=1.0, prune=prune)
        pred.fit(s.ops[idx], torch.tensor(y))
        return predict_all(pred, space)

    return method


def _kernel_ridge(space: SearchSpace, idx: np.ndarray, y: np.ndarray, s: Signals) -> np.ndarray:
    # RBF on one-hot ops; alpha 0.1, gamma 0.2: what 5-fold CV on the noisy rows chose in most draws
    onehot = torch.nn.functional.one_hot(s.ops, int(s.ops.max()) + 1).flatten(1).numpy()
    model = KernelRidge(alpha=0.1, kernel="rbf", gamma=0.2)
    model.fit(onehot[idx], (y - y.mean()) / (y.std() or 1.0))
    return model.predict(onehot)


RIDGE, LIVE = _ridge(False), _ridge(True)


def _fused(fitted: Method | None, free: tuple[str, ...], **kwargs: str) -> Method:
    """`fuse` (or, with `rule="vote"`, `rank_vote`) of the `fitted` ranking (key "f") and the free
    signals named in `free` ("zs", "params", "live_params", and "every_zs": every zero-shot
    column)."""
    rule = kwargs.pop("rule", "softmin")

    def method(space: SearchSpace, idx: np.ndarray, y: np.ndarray, s: Signals) -> np.ndarray:
        columns = {}
        for name in free:  # "every_zs": each zero-shot column on its own
            columns.update(s.zero_shot if name == "every_zs" else {name: getattr(s, name)})
        if fitted is not None:
            columns = {"f": fitted(space, idx, y, s), **columns}
        if rule == "vote":
            return rank_vote(columns).numpy()
        return fuse(columns, rule=rule, **kwargs)

    return method


def methods(gcn: Fitter | None) -> dict[str, Method]:
    """Every ranking the benchmark compares, name -> f(space, idx, y, signals) -> scores.

    `gcn(idx, y)` fits the GCN ensemble and returns its whole-space scores (None: no GCN rows).
    Rows that need a zero-shot score are skipped by `run_draw` when there is none.
    """
    rows: dict[str, Method] = {
        "ridge on one-hot ops": RIDGE,
        "kernel ridge (RBF)": _kernel_ridge,
        "live ridge": LIVE,
        "params": lambda sp, i, y, s: s.params,
        "live params": lambda sp, i, y, s: s.live_params,
        "zero-shot": lambda sp, i, y, s: s.zs,
        "free vote(zero-shot, params)": _fused(None, ("zs", "params"), rule="vote"),
        "vote(ridge, zero-shot, params)": _fused(RIDGE, ("zs", "params"), rule="vote"),
        "free softmin(zero-shot, live params)": _fused(None, ("zs", "live_params")),
        "fused: live ridge + live params": _fused(LIVE, ("live_params",), trust="f"),
        "fused: live ridge + zero-shot + live params": _fused(
            LIVE, ("zs", "live_params"), trust="f"
        ),
        "fused, mean rule: live ridge + zero-shot + live params": _fused(
            LIVE, ("zs", "live_params"), rule="mean", trust="f"
        ),
        "free softmin(every zero-shot, live params)": _fused(None, ("every_zs", "live_params")),
        "free softmin(every zero-shot)": _fused(None, ("every_zs",)),
        "fused: live ridge + every zero-shot + live params": _fused(
            LIVE, ("every_zs", "live_params"), trust="f"
        ),
    }
    if gcn is not None:
        fitted: Method = lambda sp, i, y, s: gcn(i, y)  # noqa: E731
        rows["fused, all weigh 1: GCN + zero-shot + live params"] = _fused(
            fitted, ("zs", "live_params")
        )
        rows["GCN ensemble"] = fitted
        rows["fused: GCN + live params"] = _fused(fitted, ("live_params",), trust="f")
        rows["fused: GCN + zero-shot + live params"] = _fused(
            fitted, ("zs", "live_params"), trust="f"
        )
        rows["fused: GCN + every zero-shot + live params"] = _fused(
            fitted, ("every_zs", "live_params"), trust="f"
        )
        rows["fused: GCN + every zero-shot"] = _fused(fitted, ("every_zs",), trust="f")
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
        if "every zero-shot" in name and len(signals.zero_shot) < 2:  # the one-column rows' twin
            continue
        out[name] = rank_metrics(np.asarray(method(space, idx, y, signals)), truth, classes)
    return out

"""Fitting predictors to (noisy) subnet accuracies: a seeded GCN ensemble, and a ridge baseline.

Both share one interface: `fit(ops, y, u)` then `predict(ops, u)`, scores in the target's units (for
`loss="rank"` only the order means anything), and `state_dict()` / `from_state(space, state)` for the
checkpoint. Targets are standardised before fitting; members of the ensemble are averaged on that
standardised scale.
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Iterator
from typing import Any

import torch
from scipy.stats import kendalltau
from sklearn.linear_model import Ridge
from torch import nn

from predictor.model import GCN
from supernet.classes import prune_dead
from supernet.space import SearchSpace

LOSSES = ("mse", "rank", "both")


def pairwise_rank_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Logistic loss over every ordered pair of a batch: log(1 + exp(-(p_i - p_j))) where y_i > y_j.

    Shapes:
        pred `(B,)`, target `(B,)` -> scalar.
    """
    diff_p = pred[:, None] - pred[None, :]
    better = target[:, None] > target[None, :]
    if not better.any():
        return pred.sum() * 0.0
    return nn.functional.softplus(-diff_p[better]).mean()


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Temporarily sets torch's intra-op threads (None: leave as is)."""
    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class GCNPredictor:
    """An ensemble of GCNs, each fitted with its own seed and its own held-out split.

    Args:
        space: the search space the op indices belong to; its `graph_encoder` makes the graphs.
        hidden_channels, num_layers, dropout, pool: the `predictor.model.GCN` options; `pool="auto"`
            is the space's `graph_pool` (`mean` on the chain, a path of layers; `output`, the cell
            output, on NB201).
        prune, undirected: the space's graph encoding options (`SearchSpace.graph_encoder`).
        loss: `mse` (standardised targets), `rank` (pairwise logistic) or `both` (their sum,
            the rank part weighted by `rank_weight`).
        lr, weight_decay: AdamW.
        epochs: most passes over the training part.
        batch_size: samples per step (the rank loss uses every pair of a batch).
        val_fraction: held-out part per member for early stopping (0: train `epochs` on all).
        patience: epochs without a better held-out loss before stopping.
        ensemble: members; predictions are the mean of their standardised outputs.
        seed: member m uses seed `seed * 1000 + m`.
        num_threads: torch threads while fitting and predicting. 1: the graphs are tiny, so the
            work is per-op overhead, and on a busy 2-core machine 2 threads ran 40x slower than 1.
    """

    kind = "gcn"

    def __init__(
        self,
        space: SearchSpace,
        hidden_channels: int = 64,
        num_layers: int = 4,
        dropout: float = 0.0,
        pool: str = "auto",
        prune: bool = True,
        undirected: bool = True,
        loss: str = "both",
        rank_weight: float = 1.0,
        lr: float = 3e-3,
        weight_decay: float = 1e-4,
        epochs: int = 200,
        batch_size: int = 64,
        val_fraction: float = 0.1,
        patience: int = 30,
        ensemble: int = 5,
        seed: int = 0,
        num_threads: int | None = 1,
    ) -> None:
        if loss not in LOSSES:
            raise ValueError(f"loss={loss!r}; expected one of {LOSSES}")
        if not 0.0 <= val_fraction < 1.0:
            raise ValueError(f"val_fraction={val_fraction} must be in [0, 1)")
        if ensemble < 1:
            raise ValueError(f"ensemble={ensemble} must be at least 1")
        self.space = space
        if pool == "auto":
            pool = space.graph_pool
        self.hparams: dict[str, Any] = dict(
            hidden_channels=hidden_channels,
            num_layers=num_layers,
            dropout=dropout,
            pool=pool,
            prune=prune,
            undirected=undirected,
            loss=loss,
            rank_weight=rank_weight,
            lr=lr,
            weight_decay=weight_decay,
            epochs=epochs,
            batch_size=batch_size,
            val_fraction=val_fraction,
            patience=patience,
            ensemble=ensemble,
            seed=seed,
            num_threads=num_threads,
        )
        self.encoder = space.graph_encoder(prune=prune, undirected=undirected)
        self.members: list[GCN] = []
        self.y_mean, self.y_std, self.u_channels = 0.0, 1.0, 0

    def _new_model(self) -> GCN:
        h = self.hparams
        return GCN(
            self.encoder.in_channels,
            h["hidden_channels"],
            1,
            h["num_layers"],
            h["dropout"],
            h["pool"],
            self.u_channels,
        )

    def _forward(self, model: GCN, ops: torch.Tensor, u: torch.Tensor | None) -> torch.Tensor:
        b = self.encoder.batch(ops, u)
        return model(b.x, b.edge_index, b.batch, b.u if u is not None else None).squeeze(-1)

    def _loss(self, pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        loss = self.hparams["loss"]
        total = pred.new_zeros(())
        if loss in ("mse", "both"):
            total = total + nn.functional.mse_loss(pred, y)
        if loss in ("rank", "both"):
            total = total + self.hparams["rank_weight"] * pairwise_rank_loss(pred, y)
        return total

    def fit(self, ops: torch.Tensor, y: torch.Tensor, u: torch.Tensor | None = None) -> dict:
        """Fits every member; returns `fit/epochs` (mean epochs run) and `fit/val_loss`.

        Shapes:
            ops `(n, num_decisions)` long, y `(n,)`, u `(n, F)`.
        """
        ops, y = ops.long(), y.float()
        if len(y) < 2:
            raise ValueError(f"need at least 2 samples to fit; got {len(y)}")
        self.y_mean, self.y_std = float(y.mean()), float(y.std()) or 1.0
        z = (y - self.y_mean) / self.y_std
        self.u_channels = 0 if u is None else u.size(1)
        self.members, epochs_run, val_losses, val_taus = [], [], [], []
        for m in range(self.hparams["ensemble"]):
            with torch.random.fork_rng(devices=[]), torch_threads(self.hparams["num_threads"]):
                model, n_epochs, val, tau = self._fit_member(
                    ops, z, u, self.hparams["seed"] * 1000 + m
                )
            self.members.append(model)
            epochs_run.append(n_epochs)
            val_losses.append(val)
            val_taus.append(tau)
        finite = [v for v in val_losses if math.isfinite(v)]
        taus = [t for t in val_taus if math.isfinite(t)]
        return {
            "fit/epochs": sum(epochs_run) / len(epochs_run),
            "fit/val_loss": sum(finite) / len(finite) if finite else float("nan"),
            # each member's Kendall tau on the rows it never trained on (measured, noisy)
            "fit/heldout_tau": sum(taus) / len(taus) if taus else float("nan"),
        }

    def _fit_member(
        self, ops: torch.Tensor, z: torch.Tensor, u: torch.Tensor | None, seed: int
    ) -> tuple[GCN, int, float, float]:
        """One member: early-stopped on its own held-out rows; returns the model, epochs run,
        the best held-out loss and the held-out Kendall tau (nan with under 3 held-out rows)."""
        h = self.hparams
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        perm = torch.randperm(len(z), generator=gen)
        n_val = int(round(len(z) * h["val_fraction"])) if h["val_fraction"] > 0 else 0
        n_val = min(n_val, len(z) - 2)
        val, train = perm[:n_val], perm[n_val:]
        model = self._new_model()
        opt = torch.optim.AdamW(model.parameters(), lr=h["lr"], weight_decay=h["weight_decay"])
        best, best_state, since, ran = math.inf, None, 0, 0
        for epoch in range(1, h["epochs"] + 1):
            ran = epoch
            model.train()
            order = train[torch.randperm(len(train), generator=gen)]
            for i in range(0, len(order), h["batch_size"]):
                idx = order[i : i + h["batch_size"]]
                if len(idx) < 2:
                    continue
                loss = self._loss(
                    self._forward(model, ops[idx], None if u is None else u[idx]), z[idx]
                )
                opt.zero_grad()
                loss.backward()
                opt.step()
            if n_val >= 2:
                model.eval()
                with torch.no_grad():
                    v = float(
                        self._loss(
                            self._forward(model, ops[val], None if u is None else u[val]), z[val]
                        )
                    )
                if v < best:
                    best, best_state, since = v, copy.deepcopy(model.state_dict()), 0
                else:
                    since += 1
                    if since >= h["patience"]:
                        break
        if best_state is not None:
            model.load_state_dict(best_state)
        model.eval()
        tau = float("nan")
        if n_val >= 3:
            with torch.no_grad():
                pred = self._forward(model, ops[val], None if u is None else u[val])
            tau = float(kendalltau(pred.numpy(), z[val].numpy())[0])
        return model, ran, best, tau

    @torch.no_grad()
    def predict(
        self, ops: torch.Tensor, u: torch.Tensor | None = None, batch_size: int = 4096
    ) -> torch.Tensor:
        """Ensemble-mean scores in the target's units.

        Shapes:
            ops `(m, num_decisions)`, u `(m, F)` -> `(m,)`.
        """
        if not self.members:
            raise RuntimeError("predict() before fit()")
        if (u is None) != (self.u_channels == 0):
            raise ValueError(
                f"predictor was fitted with {self.u_channels} u-features; "
                f"got {'none' if u is None else u.size(1)}"
            )
        out = []
        with torch_threads(self.hparams["num_threads"]):
            for i in range(0, len(ops), batch_size):
                sl = slice(i, i + batch_size)
                preds = [
                    self._forward(mod, ops[sl].long(), None if u is None else u[sl].float())
                    for mod in self.members
                ]
                out.append(torch.stack(preds).mean(0))
        return torch.cat(out) * self.y_std + self.y_mean

    def state_dict(self) -> dict:
        return {**_fitted_state(self), "members": [m.state_dict() for m in self.members]}

    @classmethod
    def from_state(cls, space: SearchSpace, state: dict) -> GCNPredictor:
        pred = _restore_fitted(cls, space, state)
        pred.members = []
        for sd in state["members"]:
            model = pred._new_model()
            model.load_state_dict(sd)
            model.eval()
            pred.members.append(model)
        return pred


class RidgePredictor:
    """Ridge regression on one-hot ops (plus `u`): the linear baseline, and with `prune` the
    default smoother of real supernet accuracies. `sklearn.linear_model.Ridge` fits it; the
    checkpoint keeps one weight vector `w` (intercept first), so it predicts without scikit-learn.

    With `prune`, each arch enters as what it computes: dead ops (off every input -> output path)
    become `none`, so archs that differ only on dead edges get one prediction. On a real few-shot
    supernet's accuracies (1,000 rows) this ranked all NB201 archs at Kendall 0.62, against 0.57
    without pruning and 0.55 for the supernet itself (BENCHMARKS.md).

    Args:
        space: the search space.
        alpha: L2 penalty on the standardised target's scale (0.1-10 rank within 0.005 there).
        prune: one-hot of the pruned arch (cell spaces; a no-op where no op is `none`).
    """

    kind = "ridge"

    def __init__(self, space: SearchSpace, alpha: float = 1.0, prune: bool = False) -> None:
        self.space, self.hparams = space, {"alpha": alpha, "prune": prune}
        self.w: torch.Tensor | None = None
        self.y_mean, self.y_std, self.u_channels = 0.0, 1.0, 0

    def _design(self, ops: torch.Tensor, u: torch.Tensor | None) -> torch.Tensor:
        if self.hparams["prune"]:
            ops = torch.tensor(
                [prune_dead(self.space, tuple(a)) for a in ops.tolist()], dtype=torch.long
            ).reshape(ops.shape)
        onehot = nn.functional.one_hot(ops.long(), len(self.space.ops)).flatten(1).double()
        cols = [torch.ones(len(ops), 1, dtype=torch.double), onehot]
        if u is not None:
            cols.append(u.double())
        return torch.cat(cols, dim=1)

    def fit(self, ops: torch.Tensor, y: torch.Tensor, u: torch.Tensor | None = None) -> dict:
        y = y.double()
        self.y_mean, self.y_std = float(y.mean()), float(y.std()) or 1.0
        self.u_channels = 0 if u is None else u.size(1)
        X = self._design(ops, u)[:, 1:].numpy()  # scikit-learn fits the intercept, unpenalised
        target = ((y - self.y_mean) / self.y_std).numpy()
        ridge = Ridge(alpha=self.hparams["alpha"], solver="cholesky").fit(X, target)
        # stored as before: the intercept first, then one weight per design column
        intercept = torch.tensor([ridge.intercept_], dtype=torch.double)
        self.w = torch.cat([intercept, torch.from_numpy(ridge.coef_).double()])
        return {}

    def predict(
        self, ops: torch.Tensor, u: torch.Tensor | None = None, batch_size: int = 4096
    ) -> torch.Tensor:
        if self.w is None:
            raise RuntimeError("predict() before fit()")
        return (self._design(ops, u) @ self.w).float() * self.y_std + self.y_mean

    def state_dict(self) -> dict:
        return {**_fitted_state(self), "w": self.w}

    @classmethod
    def from_state(cls, space: SearchSpace, state: dict) -> RidgePredictor:
        pred = _restore_fitted(cls, space, state)
        pred.w = state["w"]
        return pred


def _fitted_state(pred: GCNPredictor | RidgePredictor) -> dict:
    """What every predictor saves besides its weights: kind, hyper-parameters, target scaling."""
    return {
        "kind": pred.kind,
        "hparams": dict(pred.hparams),
        "y_mean": pred.y_mean,
        "y_std": pred.y_std,
        "u_channels": pred.u_channels,
    }


def _restore_fitted(cls: type, space: SearchSpace, state: dict) -> Any:
    pred = cls(space, **state["hparams"])
    pred.y_mean, pred.y_std, pred.u_channels = state["y_mean"], state["y_std"], state["u_channels"]
    return pred


PREDICTORS = {"gcn": GCNPredictor, "ridge": RidgePredictor}


def predictor_from_state(space: SearchSpace, state: dict) -> GCNPredictor | RidgePredictor:
    """Rebuilds a fitted predictor from its `state_dict()`."""
    if state.get("kind") not in PREDICTORS:
        raise ValueError(
            f"unknown predictor kind {state.get('kind')!r}; expected {sorted(PREDICTORS)}"
        )
    return PREDICTORS[state["kind"]].from_state(space, state)

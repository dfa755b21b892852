"""The whole-space lookup table: per-arch features, batched prediction, the sorted CSV, checkpoints.

Per-arch features (`u`) are computed for every arch of the space at once, so the same values serve
the fit (rows of the sampled archs) and the table. Each column is rank-transformed over the whole
space and standardised: zero-shot scores are heavy-tailed (and FLOPs span 30x), ranks keep one huge
value from flattening the rest. No accuracy is used, so computing them over the space is fair.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from predictor.io import TABLE_COLUMNS
from predictor.module import GCNPredictor, RidgePredictor, predictor_from_state
from supernet.space import Arch, SearchSpace, get_space
from supernet.utils import DataError, atomic_save, atomic_write_csv, load_checkpoint_file


def all_ops(space: SearchSpace) -> torch.Tensor:
    """Every arch as op indices, in canonical index order.

    Shapes:
        `(space.size, num_decisions)` long.
    """
    return torch.tensor(list(space.all_archs()), dtype=torch.long)


def cost_columns(
    space: SearchSpace, input_shape: Sequence[int] = (3, 32, 32), num_classes: int = 10
) -> np.ndarray:
    """FLOPs and params (millions) of every arch, in canonical index order.

    Shapes:
        `(space.size, 2)`: columns flops_M, params_M.
    """
    costs = [space.cost(a, input_shape, num_classes) for a in space.all_archs()]
    return np.array([[c.flops_M, c.params_M] for c in costs])


def rank_standardise(values: np.ndarray) -> np.ndarray:
    """Per column: average ranks, then zero mean and unit std (a constant column becomes 0).

    Shapes:
        `(n, F)` -> `(n, F)`.
    """
    from scipy.stats import rankdata

    ranks = rankdata(values, axis=0)
    std = ranks.std(0)
    return (ranks - ranks.mean(0)) / np.where(std > 0, std, 1.0)


def space_features(
    costs: np.ndarray | None, extra: tuple[list[str], np.ndarray] | None = None
) -> tuple[list[str], torch.Tensor | None]:
    """The `u` matrix for every arch: cost columns (when given) then extra columns, standardised.

    Returns:
        names, u `(space.size, F)` float, or `([], None)` when there are no features.
    """
    names, cols = [], []
    if costs is not None:
        names += ["flops_M", "params_M"]
        cols.append(costs)
    if extra is not None:
        names += list(extra[0])
        cols.append(extra[1])
    if not cols:
        return [], None
    return names, torch.tensor(rank_standardise(np.concatenate(cols, axis=1)), dtype=torch.float)


def predict_all(
    predictor: GCNPredictor | RidgePredictor,
    space: SearchSpace,
    u: torch.Tensor | None = None,
    batch_size: int = 4096,
) -> np.ndarray:
    """Scores of every arch, in canonical index order, predicted `batch_size` archs at a time.

    Shapes:
        u `(space.size, F)` -> `(space.size,)`.
    """
    return predictor.predict(all_ops(space), u, batch_size=batch_size).numpy().astype(np.float64)


def predict_archs(
    predictor: GCNPredictor | RidgePredictor,
    space: SearchSpace,
    archs: Sequence[Arch],
    u: torch.Tensor | None = None,
    batch_size: int = 4096,
) -> np.ndarray:
    """Scores of `archs` (sampled ones, a search's population), `batch_size` at a time.

    Args:
        u: the features of every arch of the space (a checkpoint's `u`), or None.

    Shapes:
        archs `n`, u `(space.size, F)` -> `(n,)` float64.
    """
    rows = None if u is None else u[torch.tensor([space.index(a) for a in archs])]
    ops = torch.tensor(list(archs), dtype=torch.long)
    return predictor.predict(ops, rows, batch_size=batch_size).numpy().astype(np.float64)


def check_finite(values: np.ndarray, name_of: Callable[[int], str], samples: str) -> None:
    """A diverged fit: say so (naming the first arch, `name_of(i)`), and write nothing.

    Shapes:
        values `(n,)`.
    """
    bad = ~np.isfinite(values)
    if bad.any():
        raise FloatingPointError(
            f"the fitted predictor gave {int(bad.sum())} non-finite scores (first: "
            f"{name_of(int(np.flatnonzero(bad)[0]))}); nothing written. Lower predictor.lr or "
            f"check {samples}"
        )


def table_rows(
    space: SearchSpace,
    scores: np.ndarray,
    costs: np.ndarray,
    measured: dict[Arch, tuple[float, int]] | None = None,
    extra: Mapping[str, np.ndarray] | None = None,
) -> list[list[Any]]:
    """One row per arch (`TABLE_COLUMNS`, then `extra`'s columns), best score first; ties keep
    canonical index order.

    Args:
        measured: arch -> (mean measured acc, count) for the sampled archs (blank elsewhere).
        extra: name -> a whole-space column in canonical index order (the prediction beside a
            fused score, latency_ms), written with 6 significant digits.

    Shapes:
        scores `(space.size,)`, costs `(space.size, 2)`, each extra `(space.size,)`.
    """
    if len(scores) != space.size or len(costs) != space.size:
        raise ValueError(f"need {space.size} scores and costs; got {len(scores)}, {len(costs)}")
    measured = measured or {}
    columns = list((extra or {}).values())
    order = np.argsort(-scores, kind="stable")
    rows = []
    for rank, i in enumerate(order, 1):
        arch = space.from_index(int(i))
        acc, count = measured.get(arch, ("", 0))
        rows.append(
            [
                rank,
                space.to_str(arch),
                f"{scores[i]:.6g}",
                f"{costs[i, 0]:.6g}",
                f"{costs[i, 1]:.6g}",
                acc if acc == "" else f"{acc:.6g}",
                count,
                *(f"{c[i]:.6g}" for c in columns),
            ]
        )
    return rows


def write_table(
    path: str | Path, rows: list[list[Any]], extra_columns: Sequence[str] = ()
) -> Path:
    """Writes the lookup table CSV atomically (`extra_columns` close each row, e.g. latency_ms)."""
    return atomic_write_csv(path, [*TABLE_COLUMNS, *extra_columns], rows)


def config_hash(samples_sha256: str, config: dict) -> str:
    """Identifies one fit: the training data's hash and the resolved config."""
    blob = samples_sha256 + json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def save_checkpoint(
    path: str | Path,
    predictor: GCNPredictor | RidgePredictor,
    space: SearchSpace,
    config: dict,
    feature_names: list[str],
    u: torch.Tensor | None,
    samples_sha256: str,
    git: str,
) -> Path:
    """Saves the fitted predictor with everything needed to predict again (atomic write).

    The checkpoint holds the predictor's state, the resolved config, the space's registered name
    and layout arguments (`space.config()`: plain data, rebuilt by `get_space`, never by a class
    path from the file), the feature names and the standardised `u` of every arch, the samples'
    sha256, the git commit, and `hash` (data + config). It loads with `weights_only=True`.
    """
    return atomic_save(
        {
            "predictor": predictor.state_dict(),
            "config": config,
            "space": space.name,
            "space_config": space.config(),
            "feature_names": feature_names,
            "u": u,
            "samples_sha256": samples_sha256,
            "git": git,
            "hash": config_hash(samples_sha256, config),
        },
        path,
    )


def read_checkpoint(path: str | Path) -> tuple[dict, SearchSpace]:
    """A predictor checkpoint (tensors and plain data only, `weights_only=True`) and the space it
    was fitted on, rebuilt from the space's registered name and layout arguments.

    Raises:
        DataError: a missing, corrupt or pickle-needing file, or one without a known space.
    """
    ckpt = load_checkpoint_file(path, "predictor checkpoint")
    name = ckpt.get("space")
    if "predictor" not in ckpt or not isinstance(name, str):
        raise DataError(
            f"{path} is not a predictor checkpoint (no 'predictor' or 'space'); expected a "
            "predictor.ckpt from scripts/fit.py"
        )
    args = ckpt.get("space_config")
    if args is None:  # older checkpoints: the config's space arguments, its class path dropped
        old = (ckpt.get("config") or {}).get("space")
        args = {k: v for k, v in old.items() if not k.startswith("_")} if old else {}
    try:
        return ckpt, get_space(name, **args)
    except (TypeError, ValueError) as err:
        raise DataError(f"{path}: cannot rebuild its search space {name!r}: {err}") from None


def load_checkpoint(
    path: str | Path, space: SearchSpace
) -> tuple[GCNPredictor | RidgePredictor, dict]:
    """A fitted predictor and the checkpoint dict; refuses a checkpoint of another space."""
    ckpt, fitted_on = read_checkpoint(path)
    if fitted_on.name != space.name:
        raise DataError(f"{path}: checkpoint is for space {fitted_on.name!r}, not {space.name!r}")
    try:
        return predictor_from_state(space, ckpt["predictor"]), ckpt
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise DataError(
            f"{path} is not a complete predictor checkpoint ({type(err).__name__}: "
            f"{str(err)[:200]})"
        ) from None


def load_fitted(
    path: str | Path, space: SearchSpace
) -> tuple[GCNPredictor | RidgePredictor, dict]:
    """`load_checkpoint`, refused unless fitted on this very layout (name and `space.config()`).

    Another layout fails to load with a shape error, or, where the shapes agree (a path-graph GCN
    scores chains of any length), loads and scores the wrong layers. The layout is read first, from
    the file's plain data (the space is rebuilt from its registered name, never from a class path
    stored in the file; the file loads with `weights_only=True`).

    Raises:
        DataError: a missing file, or one fitted on another space or layout.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file (a predictor.ckpt from scripts/fit.py)")
    _, fitted_on = read_checkpoint(path)
    if (fitted_on.name, fitted_on.config()) != (space.name, space.config()):
        raise DataError(
            f"{path}: fitted on space {fitted_on.name} {fitted_on.config()}; this run's space is "
            f"{space.name} {space.config()} (pass the fit's space=...)"
        )
    return load_checkpoint(path, space)

"""Train one architecture standalone: `python scripts/retrain.py arch=STRING|FILE.json`.

The arch may be an arch string or the `best_arch.json` that `scripts/query.py` exports; a file's
recorded space is used (an explicit `space=` that differs is refused). The network holds only the
arch's ops (`supernet.network.build_network`); it is trained by the supernet's LightningModule, so
data, optimiser and logging are those of supernet training. `model.pt` / `model.json` of the trained
network are written beside `retrain.json` (as `scripts/export.py` writes them). With
`init_weights=model.pt` (of `scripts/export.py ckpt_path=...`) it fine-tunes the supernet's weights
instead of training from scratch.
"""

from __future__ import annotations

import json
import logging
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import hydra
from hydra.errors import InstantiationException
from omegaconf import DictConfig, OmegaConf, open_dict

from supernet.artefact import read_arch_record, resolve_arch, space_node
from supernet.export import save_network
from supernet.stages import command_line
from supernet.stages.train import run as train
from supernet.utils import (
    DataError,
    atomic_write_json,
    check_count,
    load_checkpoint_file,
)

log = logging.getLogger(__name__)


def arch_string(value: str) -> str:
    """An arch string, or the `arch` field of an exported JSON file.

    Raises:
        DataError: a missing or unreadable file, or one without a string `arch` field.
    """
    return read_arch_record(value)["arch"] if value.endswith(".json") else value


def set_arch(cfg: DictConfig, overrides: Sequence[str]) -> None:
    """Sets `cfg.arch` to the arch string and `cfg.space` to the space of a `best_arch.json`
    that records one.

    Raises:
        DataError: a bad file or arch, or a `space=` override that conflicts with the file's.
    """
    configured = hydra.utils.instantiate(cfg.space)
    arch, space, _ = resolve_arch(str(cfg.arch), configured, overrides)
    with open_dict(cfg):
        cfg.arch = arch
        if space is not configured:
            cfg.space = space_node(space)


def run(cfg: DictConfig, overrides: Sequence[str] | None = None) -> dict[str, Any]:
    """Trains the arch (from `init_weights`, a `model.pt`, when given), tests it on the test
    split and writes `retrain.json` (and, with `save_model`, `model.pt` + `model.json` of the
    trained network). With `folds=K` (K >= 2) it trains K networks, one per fold of a K-fold
    cross-validation over every image (`supernet.data.cross_fold`), each in `fold-k/` with its
    own `retrain.json`; the top `retrain.json` holds the pooled accuracy over all the images.
    A rerun into the same folder keeps the finished folds and resumes an unfinished one from its
    last checkpoint.

    Args:
        overrides: the command line, to tell an explicit `space=` (default: Hydra's).

    Raises:
        DataError: a bad arch, file or count; `ckpt_path` with `folds` >= 2; a finished fold
            in the folder that was trained with other settings.
    """
    set_arch(cfg, command_line() if overrides is None else overrides)
    folds = check_count("folds", cfg.get("folds", 1), 1, "1: the data's own test split")
    with open_dict(cfg):  # the real task's images: data.resolution is the supernet's proxy task
        cfg.data.resolution = 0
    if folds > 1 and cfg.get("ckpt_path"):
        raise DataError(
            f"ckpt_path={cfg.ckpt_path} with folds={folds}: each fold resumes from its own "
            "fold-k/checkpoints; rerun the same command into the same hydra.run.dir instead"
        )
    if cfg.get("init_weights"):  # built once up front: a bad file stops (exit 2) before training
        try:
            hydra.utils.instantiate(cfg.net)
        except InstantiationException as err:
            if isinstance(err.__cause__, DataError):
                raise err.__cause__ from None
            raise
    out = Path(cfg.paths.output_dir)
    if folds == 1:
        result = train_one(cfg)
        atomic_write_json(out / "retrain.json", result["summary"])
        return {**result, "out": str(out / "retrain.json")}
    done = [train_fold(cfg, folds, k) for k in range(folds)]
    summary = pooled(cfg, done)
    atomic_write_json(out / "retrain.json", summary)
    metrics = {"test/acc": summary["test_acc"], "val/acc": summary["val_acc"]}
    return {"summary": summary, "metrics": metrics, "out": str(out / "retrain.json")}


def train_one(cfg: DictConfig) -> dict[str, Any]:
    """Trains and tests one network in `cfg.paths.output_dir`; returns `train`'s result with the
    `summary` that `retrain.json` holds (and, with `save_model`, writes the model's files)."""
    result = train(cfg, test=True)
    summary = {
        "arch": cfg.arch,
        "test_acc": result["test"].get("test/acc"),
        "test_images": result["test_images"],
        "val_acc": result["metrics"].get("val/acc"),
        "epochs": cfg.trainer.max_epochs,
        "ckpt_path": result["ckpt_path"],
        "config": OmegaConf.to_container(cfg, resolve=True),
    }
    if cfg.get("save_model") and result["ckpt_path"]:
        net = hydra.utils.instantiate(cfg.net, weights=None)
        state = load_checkpoint_file(result["ckpt_path"])["state_dict"]
        net.load_state_dict({k[4:]: v for k, v in state.items() if k.startswith("net.")})
        summary["model"] = save_network(net, Path(cfg.paths.output_dir))
    return {**result, "summary": summary}


# What may differ between a finished fold's recorded config and this run's: where it ran.
RUN_ONLY = ("paths", "ckpt_path")


def train_fold(cfg: DictConfig, folds: int, k: int) -> dict[str, Any]:
    """Fold `k`'s summary: read from `fold-k/retrain.json` when it was trained with these
    settings, else trained (resuming from the fold's newest checkpoint) and written there.

    Raises:
        DataError: `fold-k/retrain.json` exists but records other settings.
    """
    folder = Path(cfg.paths.output_dir) / f"fold-{k}"
    fold_cfg = cfg.copy()
    with open_dict(fold_cfg):
        fold_cfg.data.folds, fold_cfg.data.fold = folds, k
        fold_cfg.paths.output_dir = str(folder)
        fold_cfg.ckpt_path = latest_checkpoint(folder / "checkpoints")
    wanted = settings(OmegaConf.to_container(fold_cfg, resolve=True))
    path, started = folder / "retrain.json", folder / "train_run.json"
    done = read_record(path, finished=True) if path.is_file() else None
    # a finished fold, else one whose training began: trained with these settings, or refused
    record = path if done is not None else started
    earlier = done if done is not None or not started.is_file() else read_record(started, False)
    if earlier is not None:
        found = settings(earlier.get("config") or {})
        if found != wanted:
            keys = wanted.keys() | found.keys()
            differ = sorted(key for key in keys if found.get(key) != wanted.get(key))
            raise DataError(
                f"{record} was retrained with other settings ({', '.join(differ)} differ); "
                "use another hydra.run.dir, or remove that folder to retrain it"
            )
    if done is not None:
        log.info(
            "fold %d/%d: kept %s (test accuracy %.2f%%)", k + 1, folds, path, done["test_acc"]
        )
        return done
    log.info("fold %d/%d: training in %s", k + 1, folds, folder)
    summary = {**train_one(fold_cfg)["summary"], "fold": k, "folds": folds}
    atomic_write_json(path, summary)
    return summary


def read_record(path: Path, finished: bool) -> dict[str, Any]:
    """A fold's `retrain.json` (`finished`) or `train_run.json`.

    Raises:
        DataError: not a JSON object; a `retrain.json` without numeric `test_acc` and
            `test_images`.
    """
    try:
        record = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(
            f"{path} is not JSON text ({err}); remove it to retrain that fold"
        ) from None
    numeric = lambda v: isinstance(v, int | float) and not isinstance(v, bool)  # noqa: E731
    wanted = ("test_acc", "test_images") if finished else ()
    if not isinstance(record, dict) or not all(numeric(record.get(key)) for key in wanted):
        what = "object with numeric test_acc and test_images" if finished else "object"
        raise DataError(f"{path}: expected a JSON {what}; remove it to retrain that fold")
    return record


def settings(config: dict[str, Any]) -> dict[str, Any]:
    """A recorded config without the keys that only say where the run was (`RUN_ONLY`)."""
    return {key: value for key, value in config.items() if key not in RUN_ONLY}


def latest_checkpoint(folder: Path) -> str | None:
    """The newest of `last.ckpt` and `interrupted.ckpt` in `folder` (an unfinished fold's), or
    None."""
    found = [p for p in (folder / "last.ckpt", folder / "interrupted.ckpt") if p.is_file()]
    return str(max(found, key=lambda p: p.stat().st_mtime)) if found else None


def pooled(cfg: DictConfig, done: list[dict[str, Any]]) -> dict[str, Any]:
    """`retrain.json` of a cross-validated retrain: the accuracy over every image (the images
    the folds got right over all the images), the folds' mean and spread, and each fold's."""
    images = sum(f["test_images"] for f in done)
    # the images each fold got right (its accuracy is a batch-weighted mean in float32): the
    # pooled accuracy from these counts is exact, so two archs with one count tie exactly
    correct = sum(round(f["test_acc"] * f["test_images"] / 100) for f in done)
    accs = [f["test_acc"] for f in done]
    vals = [f["val_acc"] for f in done if f.get("val_acc") is not None]
    return {
        "arch": cfg.arch,
        "test_acc": 100 * correct / images,
        "test_images": images,
        "test_correct": correct,
        "test_acc_mean": statistics.fmean(accs),
        "test_acc_std": statistics.stdev(accs),
        "val_acc": statistics.fmean(vals) if vals else None,
        "epochs": cfg.trainer.max_epochs,
        "folds": [
            {
                key: f.get(key)
                for key in ("fold", "test_acc", "test_images", "val_acc", "ckpt_path")
            }
            for f in done
        ],
        "config": OmegaConf.to_container(cfg, resolve=True),
    }


def report(cfg: DictConfig, result: dict[str, Any]) -> None:
    summary = result["summary"]
    how = ""
    if "folds" in summary and isinstance(summary["folds"], list):
        accs = [f["test_acc"] for f in summary["folds"]]
        how = (
            f" over all {summary['test_images']:,} images ({len(accs)}-fold cross-validation; "
            f"folds {min(accs):.2f}-{max(accs):.2f}%, std {summary['test_acc_std']:.2f})"
        )
    print(f"{cfg.arch}: test accuracy {summary['test_acc']:.2f}%{how} -> {result['out']}")

"""Evaluate subnets with inherited weights: `nas-evaluate ckpt_path=... evaluator.num_archs=N`.

Rows go to `subnets.csv` one by one as they are measured; a rerun skips the archs already there.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from supernet.evaluator import SubnetEvaluator, choose_archs
from supernet.module import load_supernet, weights_hash
from supernet.progress import LogProgress
from supernet.results import ResultsCSV, merge_shards, read_archs_csv, shard_path
from supernet.space import Arch, SearchSpace
from supernet.utils import DataError, check_count, resolve_bf16, resolve_device, write_run_info

log = logging.getLogger(__name__)

COLUMNS = [
    "arch",
    "acc",
    "loss",
    "images",
    "seed",
    "bn",
    "heldout_images",
    "calib_batches",
    "bf16",
    "data",
    "ckpt",
]  # ckpt: digest of the supernet weights; seed .. ckpt: the settings every row must share


def data_key(data: DictConfig) -> str:
    """The data settings an accuracy depends on (split, sizes, batch sizes: `bn=batch` normalises
    by each batch, `recalibrate` by augmented training batches), as `<name>-<digest>`."""
    settings = OmegaConf.to_container(data, resolve=True)
    for k in ("_target_", "device", "download"):  # where and how, not which images
        settings.pop(k, None)
    blob = json.dumps(settings, sort_keys=True, default=str).encode()
    return f"{data.name}-{hashlib.sha256(blob).hexdigest()[:8]}"


def check_settings(cfg: DictConfig) -> dict[str, Any]:
    """The counts that change which archs or images are measured, checked before anything runs.

    Returns:
        num_archs (0: every arch of the kind, from `num_archs: null`), heldout_images (0: the
        whole held-out split) and calib_batches.

    Raises:
        DataError: naming the setting, its value and what is expected.
    """
    num_archs = cfg.evaluator.num_archs
    if num_archs is not None:
        num_archs = check_count(
            "evaluator.num_archs", num_archs, 1, "null evaluates every arch of the kind"
        )
    return {
        "num_archs": num_archs or 0,
        "heldout_images": check_count(
            "evaluator.heldout_images",
            cfg.evaluator.heldout_images,
            0,
            "0: the whole held-out split",
        ),
        "calib_batches": check_count(
            "evaluator.calib_batches",
            cfg.evaluator.calib_batches,
            1,
            "training batches per subnet for bn=recalibrate",
        ),
        "shard": check_count("shard", cfg.shard, 0),
        "num_shards": check_count("num_shards", cfg.num_shards, 1),
        "batch_size": check_count("data.batch_size", cfg.data.batch_size, 1),
        "eval_batch_size": check_count("data.eval_batch_size", cfg.data.eval_batch_size, 1),
        "bf16": resolve_bf16("evaluator.bf16", cfg.evaluator.bf16, resolve_device(cfg.device)),
    }


def run(cfg: DictConfig) -> dict[str, Any]:
    """Evaluates the chosen archs not yet in `cfg.out` (this shard's share of them); with
    `merge=true` merges the shard files into `cfg.out` instead. Returns the output path and counts."""
    if cfg.merge:
        total = merge_shards(cfg.out, cfg.num_shards)
        return {"out": str(cfg.out), "evaluated": 0, "total": total, "archs": total}
    counts = check_settings(cfg)
    space = instantiate(cfg.space)
    device = resolve_device(cfg.device)
    expected = {
        "space": space.name,
        "space_config": space.config(),
        "num_classes": cfg.data.num_classes,
        "in_channels": cfg.data.input_shape[0],
    }
    net, record = load_supernet(cfg.ckpt_path, expected)
    net = net.to(device)
    if cfg.evaluator.channels_last:
        net = net.to(memory_format=torch.channels_last)
    archs = chosen_archs(cfg, space, counts["num_archs"])
    out_path = shard_path(cfg.out, cfg.shard, cfg.num_shards)
    data = instantiate(cfg.data, device=str(device))
    data.setup()
    evaluator = SubnetEvaluator(
        net,
        data.loader("heldout", limit=cfg.evaluator.heldout_images),
        cfg.evaluator.bn,
        data.loader("train", train=True),
        cfg.evaluator.calib_batches,
        counts["bf16"],
    )
    out = results_file(cfg, counts, out_path, weights_hash(net))
    write_run_info(
        out_path.parent, "evaluate", OmegaConf.to_container(cfg, resolve=True), checkpoint=record
    )
    todo = [a for a in archs if space.to_str(a) not in out]
    log.info(
        "evaluating %d subnets (%d already in %s), bn=%s, held-out images=%s",
        len(todo),
        len(archs) - len(todo),
        out_path,
        cfg.evaluator.bn,
        cfg.evaluator.heldout_images or "all",
    )
    evaluate_into(out, evaluator, space, todo, done=len(archs) - len(todo))
    return {"out": str(out_path), "evaluated": len(todo), "total": len(out), "archs": len(archs)}


def chosen_archs(cfg: DictConfig, space: SearchSpace, num_archs: int) -> list[Arch]:
    """This shard's share of the archs `cfg.evaluator.archs` names (a kind, or a CSV with an arch column),
    the first `num_archs` of them (0: all). Every process draws the same list and keeps every
    `num_shards`-th arch."""
    if Path(str(cfg.evaluator.archs)).suffix == ".csv":
        archs = read_archs_csv(cfg.evaluator.archs, space, cfg.evaluator.rank_by)
        archs = archs[:num_archs] if num_archs else archs
    else:
        try:
            archs = choose_archs(space, cfg.evaluator.archs, num_archs, cfg.seed)
        except ValueError as err:
            raise DataError(str(err)) from None
    return archs[cfg.shard :: cfg.num_shards]


def results_file(
    cfg: DictConfig, counts: dict[str, Any], path: Path, ckpt_digest: str
) -> ResultsCSV:
    """`subnets.csv` (or this shard's file), refusing rows measured with other settings."""
    fixed = {
        "seed": cfg.seed,
        "bn": cfg.evaluator.bn,
        "heldout_images": counts["heldout_images"],
        "calib_batches": counts["calib_batches"],
        "bf16": counts["bf16"],
        "data": data_key(cfg.data),
        "ckpt": ckpt_digest,
    }
    return ResultsCSV(path, COLUMNS, fixed=fixed)


def evaluate_into(
    out: ResultsCSV,
    evaluator: SubnetEvaluator,
    space: SearchSpace,
    todo: list[Arch],
    done: int,
) -> None:
    """Evaluates `todo`, one flushed row each, with a progress line in the log."""
    with LogProgress("evaluating subnets", len(todo) + done, log, completed=done) as progress:
        for arch in todo:
            r = evaluator.evaluate(arch)
            row = {"arch": space.to_str(arch), "acc": f"{r.acc:.4f}", "loss": f"{r.loss:.6f}"}
            out.append({**row, "images": r.images})
            progress.advance()


def report(cfg: DictConfig, result: dict[str, Any]) -> None:
    log.info(f"{result['evaluated']} subnets evaluated, {result['total']} in {result['out']}")

"""Evaluate subnets with inherited weights: `python scripts/evaluate.py ckpt_path=... num_archs=N`.

Rows go to `subnets.csv` one by one as they are measured; a rerun skips the archs already there.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import hydra  # noqa: E402
from hydra.utils import instantiate  # noqa: E402
from omegaconf import DictConfig, OmegaConf  # noqa: E402

from supernet.evaluator import SubnetEvaluator, choose_archs  # noqa: E402
from supernet.module import load_supernet, weights_hash  # noqa: E402
from supernet.progress import LogProgress  # noqa: E402
from supernet.results import ResultsCSV, merge_shards, read_archs_csv, shard_path  # noqa: E402
from supernet.utils import resolve_device, write_run_info  # noqa: E402

log = logging.getLogger(__name__)

COLUMNS = [
    "arch",
    "acc",
    "loss",
    "images",
    "seed",
    "bn",
    "ckpt",
]  # ckpt: digest of the supernet weights


def run(cfg: DictConfig) -> dict[str, Any]:
    """Evaluates the chosen archs not yet in `cfg.out` (this shard's share of them); with
    `merge=true` merges the shard files into `cfg.out` instead. Returns the output path and counts."""
    if cfg.merge:
        total = merge_shards(cfg.out, cfg.num_shards)
        return {"out": str(cfg.out), "evaluated": 0, "total": total, "archs": total}
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
    if Path(str(cfg.archs)).suffix == ".csv":
        archs = read_archs_csv(cfg.archs, space, cfg.rank_by)
        archs = archs[: cfg.num_archs] if cfg.num_archs > 0 else archs
    else:
        archs = choose_archs(space, cfg.archs, cfg.num_archs, cfg.seed)
    archs = archs[
        cfg.shard :: cfg.num_shards
    ]  # every process draws the same list, keeps its share
    out_path = shard_path(cfg.out, cfg.shard, cfg.num_shards)
    data = instantiate(cfg.data, device=str(device))
    data.setup()
    evaluator = SubnetEvaluator(
        net,
        data.loader("heldout", limit=cfg.heldout_images),
        cfg.bn,
        data.loader("train", train=True),
        cfg.calib_batches,
        cfg.bf16,
    )
    out = ResultsCSV(
        out_path,
        COLUMNS,
        fixed={"seed": cfg.seed, "bn": cfg.bn, "ckpt": weights_hash(net)},
    )
    write_run_info(
        out_path.parent,
        "evaluate",
        OmegaConf.to_container(cfg, resolve=True),
        checkpoint=record,
    )
    todo = [a for a in archs if space.to_str(a) not in out]
    log.info(
        "evaluating %d subnets (%d already in %s), bn=%s, held-out images=%s",
        len(todo),
        len(archs) - len(todo),
        out_path,
        cfg.bn,
        cfg.heldout_images or "all",
    )
    with LogProgress(
        "evaluating subnets", len(archs), log, completed=len(archs) - len(todo)
    ) as progress:
        for arch in todo:
            r = evaluator.evaluate(arch)
            out.append(
                {
                    "arch": space.to_str(arch),
                    "acc": f"{r.acc:.4f}",
                    "loss": f"{r.loss:.6f}",
                    "images": r.images,
                }
            )
            progress.advance()
    return {"out": str(out_path), "evaluated": len(todo), "total": len(out), "archs": len(archs)}


@hydra.main(config_path="../conf", config_name="evaluate", version_base="1.3")
def main(cfg: DictConfig) -> None:
    result = run(cfg)
    log.info(f"{result['evaluated']} subnets evaluated, {result['total']} in {result['out']}")


if __name__ == "__main__":
    main()

"""Measure a latency lookup table on this machine: `python scripts/latency.py space=chain`.

Writes the table (per layer and op, median ms after a warm-up, with the device name) and a check:
the table's latency against the measured latency of `check_archs` whole standalone networks. The
table's correction factor (`LatencyTable.calibrate`) is fitted on the first half of them and its
error reported on the other half, raw and corrected; the saved table carries the factor fitted on
all of them. `fit.py latency_table=FILE` then adds a `latency_ms` column that `query.py
max_latency_ms=...` budgets on, and `search.py` takes it too.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from supernet.latency import measure_network, measure_table
from supernet.utils import atomic_write_json, git_hash, resolve_device


def run(cfg: DictConfig) -> dict[str, Any]:
    space = instantiate(cfg.space)
    if not space.has_latency_table:
        raise ValueError(
            f"space={space.name}: this space has no latency table (its supernet has no per-layer "
            "blocks to time); the chain space has one"
        )
    device = resolve_device(cfg.device)
    if device.type == "cpu" and cfg.threads:
        torch.set_num_threads(cfg.threads)
    shape, classes = list(cfg.data.input_shape), int(cfg.data.num_classes)
    torch.manual_seed(cfg.seed)
    net_cls = space.supernet_class()
    net = net_cls(space, classes, shape[0], affine=True, track_running_stats=True).to(device)
    table = measure_table(net, shape, cfg.batch_size, cfg.warmup, cfg.repeats)
    rng = random.Random(cfg.seed)
    archs, measured = [], []
    for _ in range(cfg.check_archs):
        arch = space.sample(rng)
        alone = net_cls(space, classes, shape[0], True, True, arch=arch).to(device)
        archs.append([space.ops[a] for a in arch])
        measured.append(
            measure_network(alone, arch, shape, cfg.batch_size, cfg.warmup, cfg.repeats)
        )
    half = len(archs) // 2
    table.calibrate(archs[:half], measured[:half])
    checks = [
        {
            "arch": "|".join(ops),
            "measured_ms": ms,
            "raw_ms": table.latency_ms(ops, calibrated=False),
            "calibrated_ms": table.latency_ms(ops),
            "held_out": i >= half,
        }
        for i, (ops, ms) in enumerate(zip(archs, measured))
    ]

    def error(key: str) -> dict[str, float]:
        errors = np.abs([c[key] / c["measured_ms"] - 1 for c in checks if c["held_out"]])
        return {"mean_abs_rel": float(errors.mean()), "max_abs_rel": float(errors.max())}

    report = {
        "device": table.device,
        "git": git_hash(),
        "batch_size": cfg.batch_size,
        "input_shape": shape,
        "calibrated_on": half,
        "held_out": len(archs) - half,
        "raw_error": error("raw_ms"),
        "calibrated_error": error("calibrated_ms"),
        "checks": checks,
    }
    table.calibrate(archs, measured)  # the saved table: the factor from every measured network
    report["scale"] = table.scale
    table.save(cfg.out)
    atomic_write_json(cfg.check_out, report)
    return {"table": table, "out": str(cfg.out), "report": report}


def report(cfg: DictConfig, result: dict[str, Any]) -> None:
    r = result["report"]
    raw, cal = r["raw_error"], r["calibrated_error"]
    print(
        f"latency table -> {cfg.out} ({r['device']}); vs {r['held_out']} held-out whole networks: "
        f"raw sum mean |error| {100 * raw['mean_abs_rel']:.1f}% (max "
        f"{100 * raw['max_abs_rel']:.1f}%), calibrated on {r['calibrated_on']} others "
        f"{100 * cal['mean_abs_rel']:.1f}% (max {100 * cal['max_abs_rel']:.1f}%)"
    )

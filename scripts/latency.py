"""Measure a latency lookup table on this machine: `python scripts/latency.py space=chain`.

Writes the table (per layer and op, median ms after a warm-up, with the device name) and a check:
the table's summed latency against the measured latency of whole standalone networks. `fit.py
latency_table=FILE` then adds a `latency_ms` column that `query.py max_latency_ms=...` budgets on.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import hydra  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from hydra.utils import instantiate  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from supernet.latency import measure_network, measure_table  # noqa: E402
from supernet.model import supernet_class  # noqa: E402
from supernet.utils import atomic_write_bytes, git_hash, resolve_device  # noqa: E402


def run(cfg: DictConfig) -> dict[str, Any]:
    space = instantiate(cfg.space)
    if space.name != "chain":
        raise ValueError(f"space={space.name}: latency tables are built for the chain space")
    device = resolve_device(cfg.device)
    if device.type == "cpu" and cfg.threads:
        torch.set_num_threads(cfg.threads)
    shape, classes = list(cfg.data.input_shape), int(cfg.data.num_classes)
    torch.manual_seed(cfg.seed)
    net_cls = supernet_class(space)
    net = net_cls(space, classes, shape[0], affine=True, track_running_stats=True).to(device)
    table = measure_table(net, shape, cfg.batch_size, cfg.warmup, cfg.repeats)
    table.save(cfg.out)
    rng = random.Random(cfg.seed)
    checks = []
    for _ in range(cfg.check_archs):
        arch = space.sample(rng)
        alone = net_cls(space, classes, shape[0], True, True, arch=arch).to(device)
        measured = measure_network(alone, arch, shape, cfg.batch_size, cfg.warmup, cfg.repeats)
        predicted = table.latency_ms([space.ops[a] for a in arch])
        checks.append(
            {
                "arch": space.to_str(arch),
                "measured_ms": measured,
                "table_ms": predicted,
                "rel_error": predicted / measured - 1,
            }
        )
    errors = np.abs([c["rel_error"] for c in checks])
    report = {
        "device": table.device,
        "git": git_hash(),
        "batch_size": cfg.batch_size,
        "input_shape": shape,
        "mean_abs_rel_error": float(errors.mean()),
        "max_abs_rel_error": float(errors.max()),
        "checks": checks,
    }
    atomic_write_bytes(cfg.check_out, json.dumps(report, indent=2).encode())
    return {"table": table, "out": str(cfg.out), "report": report}


@hydra.main(config_path="../conf", config_name="latency", version_base="1.3")
def main(cfg: DictConfig) -> None:
    r = run(cfg)["report"]
    print(
        f"latency table -> {cfg.out} ({r['device']}); summed vs measured over "
        f"{len(r['checks'])} archs: mean |error| {100 * r['mean_abs_rel_error']:.1f}%, "
        f"max {100 * r['max_abs_rel_error']:.1f}%"
    )


if __name__ == "__main__":
    main()

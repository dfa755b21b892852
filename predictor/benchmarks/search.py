"""GCN-guided segment-wise search against random search, same number of supernet evaluations.

    python scripts/benchmark_search.py                     # chain space on digits, CPU, minutes
    python scripts/benchmark_search.py data=cifar10 data.root=DIR trainer=gpu

Trains one chain supernet, then spends `evaluations` supernet evaluations (held-out split) per
method under a FLOPs budget: random search measures that many random archs within the budget; the
guided search runs the segment-wise procedure (GCN fitted per segment) and measures its final
candidates; the evolution method (run.py's `search` stage) fits the GCN on the first
`evaluations - top` random archs and measures the `top` best of an evolutionary search over the
fitted predictor. Each method picks its `top` archs by the held-out accuracies it measured, so both pick
the best of the same number of noisy measurements. The picks are then judged by what neither search
saw: the supernet's accuracy on the test split, and the test accuracy of each retrained standalone.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, open_dict

from predictor.search import EvolutionSearch
from predictor.segment import segment_search
from predictor.stages.pipeline import stage_config
from supernet.evaluator import SubnetEvaluator
from supernet.module import load_supernet
from supernet.space import Arch
from supernet.stages import retrain, train
from supernet.utils import atomic_write_bytes, git_hash, resolve_device

STANDALONE_SHARED = ("seed", "space", "data", "trainer", "logger", "callbacks")
METHODS = ("random", "guided", "evolution")


def run(cfg: DictConfig) -> dict[str, Any]:
    out = Path(cfg.paths.output_dir)
    t0 = time.perf_counter()
    space = instantiate(cfg.space)
    shape, classes = tuple(cfg.data.input_shape), int(cfg.data.num_classes)
    rng = random.Random(cfg.seed)
    flops = sorted(space.cost(space.sample(rng), shape, classes).flops_M for _ in range(2000))
    budget = cfg.max_flops_M or flops[int(cfg.budget_quantile * (len(flops) - 1))]

    def fits(arch: Arch) -> bool:
        return space.cost(arch, shape, classes).flops_M <= budget

    # 1. one supernet for both methods
    tcfg = stage_config(cfg, "train", {})
    with open_dict(tcfg):
        tcfg.paths.output_dir = str(out / "train")
    ckpt = train.run(tcfg)["ckpt_path"]
    device = resolve_device(cfg.device)
    net, _ = load_supernet(ckpt)
    net = net.to(device)
    data = instantiate(cfg.data, device=str(device))
    data.setup()
    calib = data.loader("train", train=True)
    evaluator = SubnetEvaluator(net, data.loader("heldout"), "recalibrate", calib, 4)
    judge = SubnetEvaluator(net, data.loader("test"), "recalibrate", calib, 4)
    cache: dict[Arch, float] = {}

    def measure(archs: list[Arch]) -> list[float]:
        for a in archs:
            if a not in cache:
                cache[a] = evaluator.evaluate(a).acc
        return [cache[a] for a in archs]

    def best_first() -> list[tuple[Arch, float]]:
        """Every arch measured by the current method, by held-out accuracy."""
        return sorted(cache.items(), key=lambda t: -t[1])

    # 2. random search
    drawn: dict[Arch, None] = {}
    while len(drawn) < cfg.evaluations:
        a = space.sample(rng)
        if fits(a):
            drawn.setdefault(a)
    measure(list(drawn))
    rand = best_first()
    cache_random = dict(cache)

    # 3. GCN-guided segment-wise search: the same number of evaluations in all
    cache.clear()
    n_seg = len(cfg.segments)
    per_segment = (cfg.evaluations - cfg.top) // n_seg

    def fit(archs: list[Arch], accs: list[float]):
        predictor = instantiate(cfg.predictor, space=space)
        predictor.fit(torch.tensor(archs), torch.tensor(accs, dtype=torch.float))
        return lambda cands: predictor.predict(torch.tensor(cands)).tolist()

    ranked, _ = segment_search(
        space,
        cfg.segments,
        measure,
        fit,
        per_segment,
        top_k=cfg.top,
        fits=fits,
        seed=cfg.seed,
        max_variants=cfg.max_variants,
    )
    final = [a for a, _ in ranked]
    measure(final)
    guided = best_first()
    evals_guided = len(cache)

    # 4. GCN fitted on random archs (the random search's first ones), evolution over its predictions
    cache.clear()
    sampled = list(drawn)[: cfg.evaluations - cfg.top]
    cache.update({a: cache_random[a] for a in sampled})
    predict = fit(sampled, [cache[a] for a in sampled])
    found = EvolutionSearch(
        space,
        predict,
        max_flops_M=budget,
        input_shape=shape,
        num_classes=classes,
        seed=cfg.seed,
        **cfg.evolution,
    ).run(cfg.generations)
    measure([a for a, _ in found if a not in cache][: cfg.top])
    evolved = best_first()
    evals_evolution = len(cache)

    # 5. retrain each method's top archs standalone (an arch two methods picked, once)
    judged: dict[Arch, tuple[float, float]] = {}  # arch -> (supernet test acc, retrained test acc)

    def retrain_top(pairs: list[tuple[Arch, float]], name: str) -> list[dict[str, Any]]:
        rows = []
        for k, (arch, acc) in enumerate(pairs[: cfg.top]):
            if arch not in judged:
                # retrain.yaml's own sampler (fixed) and standalone BN
                rcfg = stage_config(cfg, "retrain", {}, shared=STANDALONE_SHARED)
                with open_dict(rcfg):
                    rcfg.arch = space.to_str(arch)
                    rcfg.trainer.max_epochs = cfg.retrain_epochs
                    rcfg.paths.output_dir = str(out / f"retrain_{name}_{k}")
                test = retrain.run(rcfg)["summary"]["test_acc"]
                judged[arch] = (judge.evaluate(arch).acc, test)
            rows.append(
                {
                    "arch": space.to_str(arch),
                    "supernet_acc": acc,
                    "supernet_test_acc": judged[arch][0],
                    "test_acc": judged[arch][1],
                    "flops_M": space.cost(arch, shape, classes).flops_M,
                }
            )
        return rows

    report = {
        "space": space.name,
        "data": cfg.data.name,
        "budget_flops_M": budget,
        "evaluations": {
            "random": len(cache_random),
            "guided": evals_guided,
            "evolution": evals_evolution,
        },
        "random": retrain_top(rand, "random"),
        "guided": retrain_top(guided, "guided"),
        "evolution": retrain_top(evolved, "evolution"),
        "device": str(device),
        "git": git_hash(),
        "date": time.strftime("%Y-%m-%d"),
        "seed": cfg.seed,
        "total_s": time.perf_counter() - t0,
    }
    for name in METHODS:
        rows = report[name]
        for key in ("supernet_acc", "supernet_test_acc", "test_acc"):
            report[f"{name}_mean_{key}"] = float(np.mean([r[key] for r in rows]))
    atomic_write_bytes(out / "benchmark_search.json", json.dumps(report, indent=2).encode())
    return report


def report(cfg: DictConfig, r: dict[str, Any]) -> None:
    for name in METHODS:
        print(
            f"{name}: {r['evaluations'][name]} supernet evaluations; top {len(r[name])} mean "
            f"supernet acc {r[name + '_mean_supernet_acc']:.2f} (held-out, searched on), "
            f"{r[name + '_mean_supernet_test_acc']:.2f} (test), retrained test acc "
            f"{r[name + '_mean_test_acc']:.2f} (FLOPs budget {r['budget_flops_M']:.3g} M)"
        )

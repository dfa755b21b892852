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

import itertools
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from predictor.benchmarks.common import write_report
from predictor.search import EvolutionSearch
from predictor.segment import segment_search
from predictor.stages.pipeline import stage_config
from supernet.evaluator import SubnetEvaluator
from supernet.module import load_supernet
from supernet.space import Arch
from supernet.stages import retrain, train
from supernet.utils import resolve_device

STANDALONE_SHARED = ("seed", "space", "data", "trainer", "logger", "callbacks")
METHODS = ("random", "guided", "evolution")
ACCS = ("supernet_acc", "supernet_test_acc", "test_acc")


@dataclass
class Setting:
    """What every method shares: the space, the input shape, the class count and the FLOPs budget."""

    space: Any
    shape: tuple[int, ...]
    classes: int
    budget: float

    def flops(self, arch: Arch) -> float:
        return self.space.cost(arch, self.shape, self.classes).flops_M

    def fits(self, arch: Arch) -> bool:
        return self.flops(arch) <= self.budget


def setting(cfg: DictConfig, rng: random.Random) -> Setting:
    """The space and the budget: `max_flops_M`, or the `budget_quantile` of 2000 random archs' FLOPs."""
    space = instantiate(cfg.space)
    s = Setting(space, tuple(cfg.data.input_shape), int(cfg.data.num_classes), 0.0)
    flops = sorted(s.flops(space.sample(rng)) for _ in range(2000))
    s.budget = cfg.max_flops_M or flops[int(cfg.budget_quantile * (len(flops) - 1))]
    return s


class Measure:
    """Held-out accuracies through one supernet, remembered per method (`cache`)."""

    def __init__(self, evaluator: SubnetEvaluator) -> None:
        self.evaluator = evaluator
        self.cache: dict[Arch, float] = {}

    def __call__(self, archs: list[Arch]) -> list[float]:
        for a in archs:
            if a not in self.cache:
                self.cache[a] = self.evaluator.evaluate(a).acc
        return [self.cache[a] for a in archs]

    def best_first(self) -> list[tuple[Arch, float]]:
        """Every arch measured by the current method, by held-out accuracy."""
        return sorted(self.cache.items(), key=lambda t: -t[1])


def supernet(cfg: DictConfig, out: Path) -> tuple[torch.device, SubnetEvaluator, SubnetEvaluator]:
    """Trains one supernet for every method; its device, held-out evaluator and test judge."""
    tcfg = stage_config(cfg, "train", {})
    with open_dict(tcfg):
        tcfg.paths.output_dir = str(out / "train")
    device = resolve_device(cfg.device)
    net, _ = load_supernet(train.run(tcfg)["ckpt_path"])
    net = net.to(device)
    data = instantiate(cfg.data, device=str(device))
    data.setup()
    calib = data.loader("train", train=True)
    heldout = SubnetEvaluator(net, data.loader("heldout"), "recalibrate", calib, 4)
    return device, heldout, SubnetEvaluator(net, data.loader("test"), "recalibrate", calib, 4)


def fitter(cfg: DictConfig, space: Any) -> Callable[[list[Arch], list[float]], Callable]:
    """`fit(archs, accs)` -> a predict function of the configured predictor fitted to them."""

    def fit(archs: list[Arch], accs: list[float]) -> Callable[[list[Arch]], list[float]]:
        predictor = instantiate(cfg.predictor, space=space)
        predictor.fit(torch.tensor(archs), torch.tensor(accs, dtype=torch.float))
        return lambda cands: predictor.predict(torch.tensor(cands)).tolist()

    return fit


def random_search(cfg: DictConfig, s: Setting, rng: random.Random, measure: Measure) -> list[Arch]:
    """Measures `evaluations` distinct random archs within the budget; returns them in draw order."""
    drawn: dict[Arch, None] = {}
    while len(drawn) < cfg.evaluations:
        a = s.space.sample(rng)
        if s.fits(a):
            drawn.setdefault(a)
    measure(list(drawn))
    return list(drawn)


def guided_search(cfg: DictConfig, s: Setting, measure: Measure) -> None:
    """The GCN-guided segment-wise search: the same number of evaluations in all."""
    per_segment = (cfg.evaluations - cfg.top) // len(cfg.segments)
    ranked, _ = segment_search(
        s.space,
        cfg.segments,
        measure,
        fitter(cfg, s.space),
        per_segment,
        top_k=cfg.top,
        fits=s.fits,
        seed=cfg.seed,
        max_variants=cfg.max_variants,
    )
    measure([a for a, _ in ranked])


def evolution(cfg: DictConfig, s: Setting, sampled: dict[Arch, float], measure: Measure) -> None:
    """The GCN fitted on `sampled` (measured random archs), evolution over its predictions; the
    `top` best found are measured."""
    measure.cache.update(sampled)
    predict = fitter(cfg, s.space)(list(sampled), list(sampled.values()))
    found = EvolutionSearch(
        s.space,
        predict,
        max_flops_M=s.budget,
        input_shape=s.shape,
        num_classes=s.classes,
        seed=cfg.seed,
        **cfg.evolution,
    ).run(cfg.generations)
    measure([a for a, _ in found if a not in measure.cache][: cfg.top])


def searches(cfg: DictConfig, s: Setting, rng: random.Random, measure: Measure) -> dict[str, Any]:
    """Each method's measured archs, best first, and how many evaluations it spent."""
    drawn = random_search(cfg, s, rng, measure)
    found, cache_random = {"random": measure.best_first()}, dict(measure.cache)
    measure.cache.clear()
    guided_search(cfg, s, measure)
    found["guided"], evaluations = measure.best_first(), {"guided": len(measure.cache)}
    measure.cache.clear()
    sampled = drawn[: cfg.evaluations - cfg.top]  # the random search's first archs
    evolution(cfg, s, {a: cache_random[a] for a in sampled}, measure)
    found["evolution"] = measure.best_first()
    evaluations.update(random=len(cache_random), evolution=len(measure.cache))
    return {"found": found, "evaluations": evaluations}


class Retrainer:
    """Retrains each method's top archs standalone (an arch two methods picked, once) and judges
    them by what no search saw: the supernet's test accuracy and the retrained test accuracy."""

    def __init__(self, cfg: DictConfig, s: Setting, judge: SubnetEvaluator, out: Path) -> None:
        self.cfg, self.s, self.judge, self.out = cfg, s, judge, out
        self.judged: dict[Arch, tuple[float, float]] = {}

    def test_accs(self, arch: Arch, folder: str) -> tuple[float, float]:
        if arch not in self.judged:
            # retrain.yaml's own sampler (fixed) and standalone BN
            rcfg = stage_config(self.cfg, "retrain", {}, shared=STANDALONE_SHARED)
            with open_dict(rcfg):
                rcfg.arch = self.s.space.to_str(arch)
                rcfg.trainer.max_epochs = self.cfg.retrain_epochs
                rcfg.paths.output_dir = str(self.out / folder)
            test = retrain.run(rcfg)["summary"]["test_acc"]
            self.judged[arch] = (self.judge.evaluate(arch).acc, test)
        return self.judged[arch]

    def __call__(self, pairs: list[tuple[Arch, float]], name: str) -> list[dict[str, Any]]:
        rows = []
        for k, (arch, acc) in enumerate(pairs[: self.cfg.top]):
            supernet_test, test = self.test_accs(arch, f"retrain_{name}_{k}")
            rows.append(
                {
                    "arch": self.s.space.to_str(arch),
                    "supernet_acc": acc,
                    "supernet_test_acc": supernet_test,
                    "test_acc": test,
                    "flops_M": self.s.flops(arch),
                }
            )
        return rows


def run(cfg: DictConfig) -> dict[str, Any]:
    """Trains the supernet, runs the three searches, retrains their picks; writes JSON."""
    out = Path(cfg.paths.output_dir)
    t0 = time.perf_counter()
    rng = random.Random(cfg.seed)
    s = setting(cfg, rng)
    device, heldout, judge = supernet(cfg, out)
    searched = searches(cfg, s, rng, Measure(heldout))
    retrainer = Retrainer(cfg, s, judge, out)
    result: dict[str, Any] = {
        "space": s.space.name,
        "data": cfg.data.name,
        "budget_flops_M": s.budget,
        "evaluations": searched["evaluations"],
        **{name: retrainer(searched["found"][name], name) for name in METHODS},
        "seed": cfg.seed,
        "total_s": time.perf_counter() - t0,
    }
    for name, key in itertools.product(METHODS, ACCS):
        result[f"{name}_mean_{key}"] = float(np.mean([r[key] for r in result[name]]))
    config = OmegaConf.to_container(cfg, resolve=True)
    return write_report(out / "benchmark_search.json", result, config, device=device)


def report(cfg: DictConfig, r: dict[str, Any]) -> None:
    """One line per method: evaluations spent and its picks' mean accuracies."""
    for name in METHODS:
        print(
            f"{name}: {r['evaluations'][name]} supernet evaluations; top {len(r[name])} mean "
            f"supernet acc {r[name + '_mean_supernet_acc']:.2f} (held-out, searched on), "
            f"{r[name + '_mean_supernet_test_acc']:.2f} (test), retrained test acc "
            f"{r[name + '_mean_test_acc']:.2f} (FLOPs budget {r['budget_flops_M']:.3g} M)"
        )

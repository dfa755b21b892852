"""End-to-end proof on NAS-Bench-201 / CIFAR-10: how well does each ranking match the truth?

    nas-bench-nb201 truth=nb201_cifar10.csv container=cifar10_jpeg.npz \
        experiment=nb201_cifar10_gpu seeds=[0,1,2]
    nas-bench-nb201 truth=... container=... debug=tiny   # the same benchmark in minutes on a CPU

(`python scripts/benchmark_nb201.py ...` in a checkout.) Each stage gets the config it gets under its
own command (`stage_config`): presets mean the same (debug=tiny scores 40 archs zero-shot, as
`nas-zeroshot debug=tiny` does). The truth (`arch,cifar10_test`) and the
CIFAR-10 container are inputs the user brings; without them the benchmark skips with a message.

Per seed it decodes CIFAR-10 (once), trains the supernet, evaluates subnets, scores zero-shot proxies,
fits the predictor on the supernet accuracies alone and with zero-shot + cost features, then compares
each ranking with the benchmark's `cifar10_test` column. Only `score_rankings` reads the truth;
no stage of the pipeline does.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from predictor.benchmarks.common import mean_table, missing, read_column, skipped, write_report
from predictor.stages import fit
from predictor.stages.pipeline import stage_config
from supernet.metrics import ranking_report
from supernet.proxies.vote import rank_vote
from supernet.stages import evaluate, train, zeroshot

METRICS = (
    "kendall",
    "spearman",
    "kendall_classes",
    "spearman_classes",
    "precision_top5",
    "precision_top1",
    "top1_true_acc",
    "top10_true_acc",
)


def score_rankings(
    rankings: dict[str, dict[str, float]],
    truth_csv: str | Path,
    space: Any,
    column: str = "cifar10_test",
) -> dict[str, dict[str, float]]:
    """The benchmark's report for every ranking (arch string -> score, higher is better)."""
    truth = read_column(truth_csv, column, space)

    def iso(arch: str) -> str:
        return space.iso_key(space.parse(arch))

    return {name: ranking_report(score, truth, iso) for name, score in rankings.items()}


def vote(rankings: dict[str, dict[str, float]]) -> dict[str, float]:
    """The rank-average vote of several rankings (arch -> score, higher is better) over the archs
    they all score: a fixed, unweighted combination, so nothing in it is fitted to the truth."""
    archs = sorted(set.intersection(*(set(r) for r in rankings.values())))
    columns = {name: [r[a] for a in archs] for name, r in rankings.items()}
    return dict(zip(archs, rank_vote(columns).tolist()))


def has_cifar10(root: Path) -> bool:
    """Whether `root` holds decoded CIFAR-10 (`train.npz` and `test.npz`)."""
    return (root / "train.npz").is_file() and (root / "test.npz").is_file()


def decode_cifar10(root: Path, container: Path) -> float:
    """Decodes a JPEG container (with its `tools/cifar10_from_jpeg.py` beside its folder) into
    `root` unless already there; returns seconds spent."""
    if has_cifar10(root):
        return 0.0
    if not container.is_file():
        raise FileNotFoundError(f"CIFAR-10 container {container} not found")
    tool = container.parent.parent / "tools" / "cifar10_from_jpeg.py"
    t = time.perf_counter()
    subprocess.run([sys.executable, str(tool), str(container), str(root)], check=True)
    return time.perf_counter() - t


class Stages:
    """Runs the pipeline's stages for one seed under `out/<section>`, keeping each result and its
    wall time; a section other than the stage's name is a variant whose config goes on top."""

    def __init__(self, cfg: DictConfig, out: Path) -> None:
        self.cfg, self.out = cfg, out
        self.results: dict[str, Any] = {}
        self.times: dict[str, float] = {}

    def __call__(self, name: str, module: Any, section: str, chain: dict[str, Any]) -> Any:
        scfg = stage_config(self.cfg, name, chain)
        with open_dict(scfg):
            if section != name:
                scfg.merge_with(self.cfg.get(section) or {})
            scfg.paths.output_dir = str(self.out / section)
            for key, value in chain.items():
                scfg[key] = value
        t = time.perf_counter()
        self.results[section] = module.run(scfg)
        self.times[section] = time.perf_counter() - t
        return self.results[section]


def one_seed(cfg: DictConfig, seed: int, out: Path) -> dict[str, Any]:
    """The whole pipeline for one seed; returns each ranking and each stage's wall time."""
    with open_dict(cfg):
        cfg.seed = seed
        cfg.paths.output_dir = str(out)
    stage = Stages(cfg, out)
    ckpt = stage("train", train, "train", {})["ckpt_path"]
    samples = {"samples": stage("evaluate", evaluate, "evaluate", {"ckpt_path": ckpt})["out"]}
    zs_run = stage("zeroshot", zeroshot, "zeroshot", {})
    fitted = stage("fit", fit, "fit", samples)
    # Zero-shot scores are features only when they cover the space (not in debug=tiny's subset).
    whole = zs_run["total"] == instantiate(cfg.space).size
    chain = {**samples, "features": zs_run["out"]} if whole else samples
    with_features = stage("fit", fit, "fit_features", chain)
    return {
        "rankings": rankings(samples, zs_run, fitted, with_features, whole),
        "times_s": stage.times,
    }


def rankings(
    samples: dict[str, Any], zs_run: dict, fitted: dict, with_features: dict, whole: bool
) -> dict[str, dict[str, float]]:
    """Every ranking of one seed (arch -> score) from the stages' result files."""
    zs = read_column(zs_run["out"], "wrcor")
    params = read_column(fitted["table"], "params_M")
    out = {
        "params": params,
        "supernet (evaluated archs)": read_column(samples["samples"], "acc"),
        "gcn on supernet acc": read_column(fitted["table"], "score"),
        f"wrcor ({len(zs)} archs)": zs,
        ("gcn + wrcor + cost" if whole else "gcn + cost"): read_column(
            with_features["table"], "score"
        ),
    }
    if whole:  # the three signals, fixed before any result was seen: fit, zero-shot, size
        out["vote(gcn + wrcor + cost, wrcor, params)"] = vote(
            {"gcn": out["gcn + wrcor + cost"], "wrcor": zs, "params": params}
        )
    return out


def aggregate(per_seed: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, list[float]]]:
    """ranking -> metric -> [mean, std, min, max] over seeds."""
    out: dict[str, dict[str, list[float]]] = {}
    for name in per_seed[0]:
        out[name] = {}
        for metric in per_seed[0][name]:
            v = np.array([r[name][metric] for r in per_seed], float)
            out[name][metric] = [float(v.mean()), float(v.std()), float(v.min()), float(v.max())]
    return out


def markdown(summary: dict[str, dict[str, list[float]]]) -> str:
    """ranking -> number of archs it scores and mean ± std of every metric over seeds."""
    rows = [([name, f"{m['n'][0]:.0f}"], m) for name, m in summary.items()]
    return mean_table(("ranking", "n"), rows, METRICS)


def skip_reason(cfg: DictConfig) -> str | None:
    """Why the benchmark cannot run (no truth; no CIFAR-10 and no container to decode), or None."""
    skip = missing("truth", cfg.truth)
    if skip is None and not has_cifar10(Path(cfg.data.root)):
        skip = missing("container", cfg.container)
        if skip:
            skip += f" (and no train.npz / test.npz in data.root={cfg.data.root})"
    return skip


def run(cfg: DictConfig) -> dict[str, Any]:
    """Every seed's pipeline, scored against the truth; writes JSON and markdown.

    Returns:
        the report, or `{"skipped": reason}` when the truth or CIFAR-10 is not given.
    """
    if "wrcor" not in zeroshot.plan(cfg)[0]:  # the zero-shot stage's config: the proxies group
        raise ValueError(f"proxies={zeroshot.plan(cfg)[0]}: the report ranks by wrcor; list it")
    if skip := skipped(skip_reason(cfg)):
        return skip
    out = Path(cfg.paths.output_dir)
    t0 = time.perf_counter()
    decode_s = decode_cifar10(Path(cfg.data.root), Path(cfg.container or ""))
    space = instantiate(cfg.space)
    per_seed, times = [], []
    for seed in cfg.seeds:
        r = one_seed(cfg, int(seed), out / f"seed_{seed}")
        per_seed.append(score_rankings(r["rankings"], cfg.truth, space, cfg.truth_column))
        times.append(r["times_s"])
    summary = aggregate(per_seed)
    results = {
        "seeds": list(cfg.seeds),
        "decode_s": decode_s,
        "stage_times_s": times,
        "total_s": time.perf_counter() - t0,
        "summary": summary,
        "per_seed": per_seed,
    }
    device = "cuda" if torch.cuda.is_available() else "cpu"
    config = OmegaConf.to_container(cfg, resolve=True)
    md = out / "benchmark_nb201.md"
    return write_report(
        out / "benchmark_nb201.json", results, config, markdown(summary), md, device
    )


def report(cfg: DictConfig, result: dict[str, Any]) -> None:
    """The table, the total time and each stage's."""
    if "skipped" in result:
        return
    print(markdown(result["summary"]))
    print(
        f"total {result['total_s']:.0f} s on {result['device']}; stage times {result['stage_times_s']}"
    )

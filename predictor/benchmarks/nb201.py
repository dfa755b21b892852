"""End-to-end proof on NAS-Bench-201 / CIFAR-10: how well does each ranking match the truth?

    python scripts/benchmark_nb201.py experiment=nb201_cifar10_gpu seeds=[0,1,2]
    python scripts/benchmark_nb201.py debug=tiny          # the same script in minutes on a CPU

Per seed it decodes CIFAR-10 (once), trains the supernet, evaluates subnets, scores zero-shot proxies,
fits the predictor on the supernet accuracies alone and with zero-shot + cost features, then compares
each ranking with the benchmark's `cifar10_test` column. Only `score_rankings` reads the truth file;
no stage of the pipeline does.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from predictor.stages import fit
from predictor.stages.pipeline import stage_config
from supernet.metrics import ranking_report
from supernet.proxies.vote import rank_vote
from supernet.stages import evaluate, train, zeroshot
from supernet.utils import atomic_write_bytes, git_hash

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


def read_column(path: str | Path, column: str) -> dict[str, float]:
    """arch -> float(column) of a result CSV."""
    with open(path, newline="") as f:
        return {row["arch"]: float(row[column]) for row in csv.DictReader(f)}


def score_rankings(
    rankings: dict[str, dict[str, float]], truth_csv: str | Path, space: Any
) -> dict[str, dict[str, float]]:
    """The benchmark's report for every ranking (arch string -> score, higher is better)."""
    truth = read_column(truth_csv, "cifar10_test")

    def iso(arch: str) -> str:
        return space.iso_key(space.parse(arch))

    return {name: ranking_report(score, truth, iso) for name, score in rankings.items()}


def vote(rankings: dict[str, dict[str, float]]) -> dict[str, float]:
    """The rank-average vote of several rankings (arch -> score, higher is better) over the archs
    they all score: a fixed, unweighted combination, so nothing in it is fitted to the truth."""
    archs = sorted(set.intersection(*(set(r) for r in rankings.values())))
    columns = {name: [r[a] for a in archs] for name, r in rankings.items()}
    return dict(zip(archs, rank_vote(columns).tolist()))


def decode_cifar10(root: Path, container: Path) -> float:
    """Decodes the shared JPEG container into `root` unless already there; returns seconds spent."""
    if (root / "train.npz").is_file() and (root / "test.npz").is_file():
        return 0.0
    if not container.is_file():
        raise FileNotFoundError(f"CIFAR-10 container {container} not found (is ../shared absent?)")
    tool = container.parent.parent / "tools" / "cifar10_from_jpeg.py"
    t = time.perf_counter()
    subprocess.run([sys.executable, str(tool), str(container), str(root)], check=True)
    return time.perf_counter() - t


def one_seed(cfg: DictConfig, seed: int, out: Path) -> dict[str, Any]:
    """The whole pipeline for one seed; returns each ranking and each stage's wall time."""
    with open_dict(cfg):
        cfg.seed = seed
        cfg.paths.output_dir = str(out)
    times: dict[str, float] = {}
    results: dict[str, Any] = {}

    def stage(name: str, module: Any, section: str, chain: dict[str, Any]) -> None:
        scfg = stage_config(cfg, name, chain)
        with open_dict(scfg):
            if section != name:  # a variant: its section goes on top of the stage's own
                scfg.merge_with(cfg.get(section) or {})
            scfg.paths.output_dir = str(out / section)
            for key, value in chain.items():
                scfg[key] = value
        t = time.perf_counter()
        results[section] = module.run(scfg)
        times[section] = time.perf_counter() - t

    stage("train", train, "train", {})
    stage("evaluate", evaluate, "evaluate", {"ckpt_path": results["train"]["ckpt_path"]})
    stage("zeroshot", zeroshot, "zeroshot", {})
    stage("fit", fit, "fit", {"samples": results["evaluate"]["out"]})
    zs = read_column(results["zeroshot"]["out"], "wrcor")
    # Zero-shot scores are features only when they cover the space (not in debug=tiny's subset).
    whole = results["zeroshot"]["total"] == instantiate(cfg.space).size
    chain = {"samples": results["evaluate"]["out"]}
    stage(
        "fit",
        fit,
        "fit_features",
        {**chain, "features": results["zeroshot"]["out"]} if whole else chain,
    )
    params = read_column(results["fit"]["table"], "params_M")
    rankings = {
        "params": params,
        "supernet (evaluated archs)": read_column(results["evaluate"]["out"], "acc"),
        "gcn on supernet acc": read_column(results["fit"]["table"], "score"),
        f"wrcor ({len(zs)} archs)": zs,
        ("gcn + wrcor + cost" if whole else "gcn + cost"): read_column(
            results["fit_features"]["table"], "score"
        ),
    }
    if whole:  # the three signals, fixed before any result was seen: fit, zero-shot, size
        fitted = rankings["gcn + wrcor + cost"]
        rankings["vote(gcn + wrcor + cost, wrcor, params)"] = vote(
            {"gcn": fitted, "wrcor": zs, "params": params}
        )
    return {"rankings": rankings, "times_s": times}


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
    head = "| ranking | n | " + " | ".join(METRICS) + " |"
    lines = [head, "|" + "---|" * (len(METRICS) + 2)]
    for name, m in summary.items():
        cells = [f"{m[k][0]:.3f} ± {m[k][1]:.3f}" if k in m else "" for k in METRICS]
        lines.append(f"| {name} | {m['n'][0]:.0f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run(cfg: DictConfig) -> dict[str, Any]:
    truth = Path(cfg.truth)
    if not truth.is_file():
        raise FileNotFoundError(f"NB201 truth {truth} not found: the benchmark needs ../shared")
    out = Path(cfg.paths.output_dir)
    t0 = time.perf_counter()
    decode_s = decode_cifar10(Path(cfg.data.root), Path(cfg.container))
    space = instantiate(cfg.space)
    per_seed, times = [], []
    for seed in cfg.seeds:
        r = one_seed(cfg, int(seed), out / f"seed_{seed}")
        per_seed.append(score_rankings(r["rankings"], truth, space))
        times.append(r["times_s"])
    summary = aggregate(per_seed)
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    report = {
        "command": " ".join(sys.argv),
        "device": device,
        "git": git_hash(),
        "date": time.strftime("%Y-%m-%d"),
        "seeds": list(cfg.seeds),
        "decode_s": decode_s,
        "stage_times_s": times,
        "total_s": time.perf_counter() - t0,
        "summary": summary,
        "per_seed": per_seed,
        "config": OmegaConf.to_container(cfg, resolve=True),
    }
    atomic_write_bytes(out / "benchmark_nb201.json", json.dumps(report, indent=2).encode())
    atomic_write_bytes(out / "benchmark_nb201.md", (markdown(summary) + "\n").encode())
    return report


def report(cfg: DictConfig, result: dict[str, Any]) -> None:
    print(markdown(result["summary"]))
    print(
        f"total {result['total_s']:.0f} s on {result['device']}; stage times {result['stage_times_s']}"
    )

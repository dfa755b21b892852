"""Rank correlation of the zero-shot proxies with NAS-Bench-201's CIFAR-10 test accuracy, and their cost.

    nas-bench-zeroshot truth=nb201_cifar10.csv data_root=data/cifar10 n=1000 seeds=[0,1]

(`python scripts/benchmark_zeroshot.py ...` in a checkout.) Scores `n` archs drawn with `arch_seed`
on the full-size NB201 network (`space.C=16 space.N=5`) and one fixed CIFAR-10 training batch per
seed (the seed draws both the batch and the initialisation), then reports Spearman and Kendall of
each proxy (and of rank votes) against the truth, joined on the arch string, and ms per arch
measured per proxy. Results are written to `out` as JSON after every proxy, so a long run that is
stopped keeps what it finished; the markdown table beside it when every seed is done. The truth and
CIFAR-10 are inputs the user brings: without them the benchmark skips with a message.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from scipy import stats

from predictor.benchmarks.common import missing, read_column, skipped, write_report
from supernet.data import NASDataModule
from supernet.proxies import ProxyContext, build_scoring_net, fixed_batch, rank_vote, score_archs
from supernet.space import Arch, NB201Space
from supernet.stages import zeroshot
from supernet.utils import resolve_device

LIVE = ("wrcor", "naswot", "synflow")  # the proxies that look at the network's response
IMAGE = (3, 32, 32)  # CIFAR-10
CLASSES = 10


def correlations(scores: list[float], truth: list[float]) -> dict[str, float]:
    """Spearman and Kendall of `scores` against `truth`."""
    return {
        "spearman": float(stats.spearmanr(scores, truth).statistic),
        "kendall": float(stats.kendalltau(scores, truth).statistic),
    }


def skip_reason(cfg: DictConfig) -> str | None:
    """Why the benchmark cannot run (no truth, no CIFAR-10 in `data_root`), or None."""
    skip = missing("truth", cfg.truth)
    if skip or cfg.data_root is None:
        return skip or "skipped: no data_root given (a folder with CIFAR-10's train.npz/test.npz)"
    root = Path(cfg.data_root)
    if not (root / "train.npz").is_file() and not (root / "cifar-10-batches-py").is_dir():
        return (
            f"skipped: CIFAR-10 not found in data_root={root} (train.npz/test.npz, or "
            "torchvision's cifar-10-batches-py)"
        )
    return None


def scoring_device(cfg: DictConfig) -> torch.device:
    """The configured device; on CUDA, fp32 convolutions (correlations need fp32 responses: no
    TF32) and cuDNN autotuning (static shapes)."""
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    device = resolve_device(cfg.device)
    if device.type == "cuda":
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.benchmark = True
    return device


def draw_archs(space: NB201Space, n: int, seed: int) -> list[Arch]:
    """`n` distinct archs drawn with `seed` (a permutation of the space's indices)."""
    g = torch.Generator().manual_seed(seed)
    return [space.from_index(i) for i in torch.randperm(space.size, generator=g)[:n].tolist()]


def timed_scores(
    net: torch.nn.Module, archs: list[Arch], batch: tuple, name: str, ctx: ProxyContext
) -> tuple[list[float], float]:
    """Proxy `name` of every arch on `batch` (x, y), and ms per arch (after an untimed warm-up)."""
    x, y = batch
    list(score_archs(net, archs[:2], x, y, [name], ctx))
    if x.device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    chunks = score_archs(net, archs, x, y, [name], ctx, chunk=32)
    values = [s[name] for chunk in chunks for _, s in chunk]
    return values, (time.perf_counter() - t0) / len(archs) * 1e3


def votes(scores: dict[str, list[float]], acc: list[float]) -> dict[str, dict[str, float]]:
    """Correlations of the rank votes of the live proxies and of all proxies scored (two or more)."""
    live = [n for n in LIVE if n in scores]
    out = {}
    for label, subset in (("vote(" + ",".join(live) + ")", live), ("vote(all)", list(scores))):
        if len(subset) >= 2:
            out[label] = correlations(rank_vote(scores, subset).tolist(), acc)
    return out


class Bench:
    """One run: the drawn archs, their truth, the training images, and the report so far (written
    to `cfg.out` after every proxy)."""

    def __init__(self, cfg: DictConfig) -> None:
        self.cfg, self.device = cfg, scoring_device(cfg)
        # the scored networks' space: with `zeroshot.cells`, deeper than the space's (same archs)
        self.space = zeroshot.scoring_space(instantiate(cfg.space), cfg.zeroshot.get("cells"))
        truth = read_column(cfg.truth, cfg.truth_column, self.space)
        self.archs = draw_archs(self.space, int(cfg.n), int(cfg.arch_seed))
        self.acc = [truth[self.space.to_str(a)] for a in self.archs]
        self.data = NASDataModule(name="cifar10", root=str(cfg.data_root), seed=0, device="cpu")
        self.data.setup()
        self.result: dict[str, Any] = {
            "n_archs": len(self.archs),
            "space": {"C": self.space.C, "N": self.space.N},
            "batch_size": int(cfg.zeroshot.batch_size),
            "seeds": {},
        }
        Path(cfg.out).parent.mkdir(parents=True, exist_ok=True)

    def save(self, markdown: str | None = None) -> dict[str, Any]:
        config = OmegaConf.to_container(self.cfg, resolve=True)
        md = Path(self.cfg.out).with_suffix(".md")
        return write_report(self.cfg.out, self.result, config, markdown, md, self.device)

    def seed(self, seed: int, names: list[str]) -> None:
        """Scores proxies `names` with one seed's batch and net; saves the scores beside `out`."""
        x_train, y_train = self.data.splits["train"]
        mean, std = self.data.mean, self.data.std
        batch = fixed_batch(
            x_train, y_train, mean, std, int(self.cfg.zeroshot.batch_size), seed, self.device
        )
        net = build_scoring_net(self.space, CLASSES, IMAGE[0], seed, self.device)
        ctx = ProxyContext(self.space, IMAGE, CLASSES)
        res: dict = self.result["seeds"].setdefault(str(seed), {"proxies": {}})
        scores: dict[str, list[float]] = {}
        for name in names:
            scores[name], ms = timed_scores(net, self.archs, batch, name, ctx)
            res["proxies"][name] = {**correlations(scores[name], self.acc), "ms_per_arch": ms}
            print(f"seed {seed} {name:8s} {line(res['proxies'][name])}", flush=True)
            res["ridge"] = ctx.counts()
            self.save()
        for label, corr in votes(scores, self.acc).items():
            res["proxies"][label] = corr
            print(f"seed {seed} {label} {line(corr)}", flush=True)
        archs = [self.space.to_str(a) for a in self.archs]
        torch.save(
            {"archs": archs, "scores": scores}, Path(self.cfg.out).with_suffix(f".seed{seed}.pt")
        )


def line(corr: dict[str, float]) -> str:
    """One proxy's correlations (and cost) on one line."""
    text = f"spearman {corr['spearman']:.4f} kendall {corr['kendall']:.4f}"
    return text + (f" {corr['ms_per_arch']:.1f} ms/arch" if "ms_per_arch" in corr else "")


def markdown(result: dict[str, Any]) -> str:
    """seed x proxy -> Spearman, Kendall, ms per arch."""
    lines = ["| seed | proxy | spearman | kendall | ms/arch |", "|---|---|---|---|---|"]
    for seed, res in result["seeds"].items():
        for name, c in res["proxies"].items():
            ms = f"{c['ms_per_arch']:.1f}" if "ms_per_arch" in c else ""
            lines.append(f"| {seed} | {name} | {c['spearman']:.4f} | {c['kendall']:.4f} | {ms} |")
    return "\n".join(lines) + "\n"


def run(cfg: DictConfig) -> dict[str, Any]:
    """Every seed's proxies against the truth; writes `out` (JSON) and its `.md`.

    Returns:
        the report, or `{"skipped": reason}` when the truth or CIFAR-10 is not given.
    """
    if skip := skipped(skip_reason(cfg)):
        return skip
    bench = Bench(cfg)
    extra = cfg.extra_seed_proxies
    for k, seed in enumerate(cfg.seeds):
        bench.seed(int(seed), zeroshot.plan(cfg)[0] if k == 0 or extra is None else list(extra))
        bench.save()
    return bench.save(markdown(bench.result))


def report(cfg: DictConfig, result: dict[str, Any]) -> None:
    """Where the report was written."""
    if "skipped" not in result:
        print(markdown(result))
        print(f"wrote {cfg.out}")

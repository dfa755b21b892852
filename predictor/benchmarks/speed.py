"""Speed of each stage: the project's path against a plain eager baseline, same process, same data.

    python scripts/benchmark_speed.py                  # full NB201 supernet, CIFAR-sized images
    python scripts/benchmark_speed.py debug=tiny       # a minute on a CPU

Stages: supernet training (images/s), subnet evaluation (ms per subnet), WRCor (ms per arch). Images
are random uint8 of the configured shape: speed does not depend on pixel values. Timings are medians
of repeated runs after a warm-up, with CUDA synchronisation on GPUs. The floor is FLOPs per image
(forward + backward = 3x the forward for training) over a measured matmul peak.
"""

from __future__ import annotations

import json
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from predictor.benchmarks.common import write_report
from supernet.data import Arrays, NASDataModule
from supernet.evaluator import SubnetEvaluator
from supernet.model import SuperNet
from supernet.module import SupernetModule
from supernet.proxies import ProxyContext, build_scoring_net, get_proxy, score_archs
from supernet.sampler import UniformSampler


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], Any], device: torch.device, repeats: int) -> float:
    """Median wall seconds of `fn` over `repeats` runs (after one warm-up run)."""
    fn()
    times = []
    for _ in range(repeats):
        sync(device)
        t = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def peak_flops(device: torch.device) -> float:
    """Measured multiply-adds per second of a large matmul (bf16 on GPU, fp32 on CPU)."""
    n = 8192 if device.type == "cuda" else 1024
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    a, b = (
        torch.randn(n, n, device=device, dtype=dtype),
        torch.randn(n, n, device=device, dtype=dtype),
    )
    return n**3 / timed(lambda: a @ b, device, 5)


def archs_for(space: Any, n: int, seed: int) -> list[tuple[int, ...]]:
    rng = random.Random(seed)
    return [
        tuple(rng.randrange(len(space.ops)) for _ in range(space.num_decisions)) for _ in range(n)
    ]


def baseline_train_s(
    cfg: DictConfig, space: Any, dm: NASDataModule, device: torch.device
) -> float:
    """Median seconds of `train_steps` plain eager SGD steps (one random arch each)."""
    bs, x_all, y_all = cfg.bench.batch_size, *dm.splits["train"]
    net = SuperNet(space, cfg.bench.num_classes, cfg.bench.image_shape[0]).to(device)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    archs = archs_for(space, cfg.bench.train_steps, 0)
    mean, std = dm.mean.to(device).view(1, -1, 1, 1), dm.std.to(device).view(1, -1, 1, 1)

    def baseline() -> None:
        for i, arch in enumerate(archs):
            j = (i * bs) % max(1, len(y_all) - bs)
            x = (x_all[j : j + bs].float() - mean) / std
            loss = F.cross_entropy(net(x, arch), y_all[j : j + bs])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
            opt.step()

    return timed(baseline, device, cfg.bench.repeats)


class Clock(pl.Callback):
    """Times from the batch after `warmup` to the end of the epoch."""

    def __init__(self, warmup: int, device: torch.device) -> None:
        self.warmup, self.device = warmup, device
        self.t: list[float] = []

    def on_train_batch_start(self, trainer, module, batch, idx) -> None:  # noqa: ANN001
        if idx == self.warmup:
            sync(self.device)
            self.t.append(time.perf_counter())

    def on_train_epoch_end(self, trainer, module) -> None:  # noqa: ANN001
        sync(self.device)
        self.t.append(time.perf_counter())


def lightning_train_s(
    cfg: DictConfig, space: Any, dm: NASDataModule, device: torch.device
) -> float:
    """Seconds of `train_steps` steps (after the warm-up) of the Lightning module and trainer."""
    module = SupernetModule(
        SuperNet(space, cfg.bench.num_classes, cfg.bench.image_shape[0]),
        UniformSampler(space, 0),
        optimizer=lambda params: torch.optim.SGD(params, lr=0.01, momentum=0.9),
        channels_last=cfg.bench.channels_last,
        reference_archs=[],
    )
    clock = Clock(cfg.bench.warmup_steps, device)
    trainer = instantiate(
        cfg.trainer,
        max_epochs=1,
        limit_train_batches=cfg.bench.train_steps + cfg.bench.warmup_steps,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        callbacks=[clock],
    )
    trainer.fit(module, datamodule=dm)
    return clock.t[-1] - clock.t[0]


def bench_train(cfg: DictConfig, space: Any, dm: NASDataModule, device: torch.device) -> dict:
    """Images/s of the eager baseline loop and of the Lightning module with the configured trainer."""
    base_s = baseline_train_s(cfg, space, dm, device)
    ours_s = lightning_train_s(cfg, space, dm, device)
    imgs = cfg.bench.train_steps * cfg.bench.batch_size
    return {
        "baseline_img_s": imgs / base_s,
        "ours_img_s": imgs / ours_s,
        "speedup": base_s / ours_s,
        "steps": cfg.bench.train_steps,
        "batch_size": cfg.bench.batch_size,
        "ours_precision": str(cfg.trainer.precision),
        "ours_channels_last": cfg.bench.channels_last,
    }


def bench_eval(cfg: DictConfig, space: Any, dm: NASDataModule, device: torch.device) -> dict:
    """ms per subnet on `eval_images` held-out images: eager fp32 baseline vs SubnetEvaluator."""
    net = SuperNet(space, cfg.bench.num_classes, cfg.bench.image_shape[0]).to(device).eval()
    archs = archs_for(space, cfg.bench.eval_subnets, 1)
    heldout = dm.loader("heldout", limit=cfg.bench.eval_images)
    heldout.batch_size = cfg.bench.eval_batch_size

    @torch.no_grad()
    def baseline() -> None:
        for arch in archs:
            for x, y in heldout:
                (net(x, arch).argmax(1) == y).sum().item()

    base_s = timed(baseline, device, cfg.bench.repeats)
    if cfg.bench.channels_last:
        net = net.to(memory_format=torch.channels_last)
    evaluator = SubnetEvaluator(
        net, heldout, "batch", bf16=cfg.bench.bf16 and device.type == "cuda"
    )
    ours_s = timed(lambda: [evaluator.evaluate(a) for a in archs], device, cfg.bench.repeats)
    n = len(archs)
    return {
        "baseline_ms_per_subnet": 1e3 * base_s / n,
        "ours_ms_per_subnet": 1e3 * ours_s / n,
        "speedup": base_s / ours_s,
        "images": min(cfg.bench.eval_images, len(dm.splits["heldout"][1])),
        "subnets": n,
    }


def bench_wrcor(cfg: DictConfig, space: Any, dm: NASDataModule, device: torch.device) -> dict:
    """ms per arch: a freshly built network per arch (baseline) vs one scoring net for all."""
    archs = archs_for(space, cfg.bench.wrcor_archs, 2)
    x, y = dm.loader("train").__iter__().__next__()
    x, y = x[:64], y[:64]
    ctx = ProxyContext(space, tuple(cfg.bench.image_shape), cfg.bench.num_classes)
    wrcor = get_proxy("wrcor")

    def baseline() -> None:
        for i, arch in enumerate(archs):
            net = build_scoring_net(
                space, cfg.bench.num_classes, cfg.bench.image_shape[0], i, device
            )
            float(wrcor(net, arch, x, y, ctx))

    base_s = timed(baseline, device, cfg.bench.repeats)
    net = build_scoring_net(space, cfg.bench.num_classes, cfg.bench.image_shape[0], 0, device)
    ours_s = timed(
        lambda: list(score_archs(net, archs, x, y, ["wrcor"], ctx)), device, cfg.bench.repeats
    )
    n = len(archs)
    return {
        "baseline_ms_per_arch": 1e3 * base_s / n,
        "ours_ms_per_arch": 1e3 * ours_s / n,
        "speedup": base_s / ours_s,
        "archs": n,
    }


def synthetic_data(cfg: DictConfig, device: torch.device) -> NASDataModule:
    """`num_images` random uint8 images and labels (speed does not depend on pixel values), half
    of them held out."""
    c, h, w = cfg.bench.image_shape
    g = torch.Generator().manual_seed(0)
    n = cfg.bench.num_images
    arrays = Arrays(
        "synthetic",
        torch.randint(0, 256, (n, c, h, w), dtype=torch.uint8, generator=g),
        torch.randint(0, cfg.bench.num_classes, (n,), generator=g),
        torch.zeros(1, c, h, w, dtype=torch.uint8),
        torch.zeros(1, dtype=torch.long),
        cfg.bench.num_classes,
    )
    dm = NASDataModule(
        "synthetic",
        batch_size=cfg.bench.batch_size,
        pad=cfg.bench.pad,
        flip=True,
        heldout_fraction=0.5,
        device=str(device),
    )
    dm.arrays = arrays
    dm.setup()
    return dm


def floors(cfg: DictConfig, space: Any, device: torch.device) -> dict[str, float]:
    """The measured matmul peak, the mean forward FLOPs per image of 200 random archs, and the
    speed floors they imply (training: forward + backward = 3x the forward)."""
    shape = tuple(cfg.bench.image_shape)
    archs = archs_for(space, 200, 3)
    flops_per_image = sum(space.cost(a, shape, cfg.bench.num_classes).flops_M for a in archs)
    flops_per_image *= 1e6 / len(archs)
    peak = peak_flops(device)
    return {
        "peak_macs_per_s": peak,
        "mean_fwd_macs_per_image": flops_per_image,
        "floor_train_img_s": peak / (3 * flops_per_image),
        "floor_eval_ms_per_subnet": 1e3 * cfg.bench.eval_images * flops_per_image / peak,
    }


def run(cfg: DictConfig) -> dict[str, Any]:
    """Every configured stage against its baseline; writes JSON to `out`."""
    device = torch.device("cuda" if torch.cuda.is_available() and cfg.device != "cpu" else "cpu")
    torch.backends.cudnn.benchmark = True
    space = instantiate(cfg.space)
    dm = synthetic_data(cfg, device)
    result: dict[str, Any] = {
        "space": {"C": space.C, "N": space.N},
        "image_shape": list(cfg.bench.image_shape),
        **floors(cfg, space, device),
    }
    for stage in cfg.stages:
        result[stage] = {"train": bench_train, "eval": bench_eval, "wrcor": bench_wrcor}[stage](
            cfg, space, dm, device
        )
        print(stage, json.dumps(result[stage]))
    config = OmegaConf.to_container(cfg, resolve=True)
    return write_report(cfg.out, result, config, device=device)


def report(cfg: DictConfig, result: dict[str, Any]) -> None:
    """The whole record and where it was written."""
    print(json.dumps(result, indent=2, default=str))
    print(f"written to {cfg.out}; config: {OmegaConf.to_yaml(cfg.space)}")

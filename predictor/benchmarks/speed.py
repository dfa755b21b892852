"""Speed of each stage: the project's path against a plain eager baseline, same process, same data.

    python scripts/benchmark_speed.py                  # full NB201 supernet, CIFAR-sized images
    python scripts/benchmark_speed.py debug=tiny       # a minute on a CPU
    python scripts/benchmark_speed.py mode=ab          # each option on and off (`ab:`), interleaved

Stages: supernet training (images/s), subnet evaluation (ms per subnet), WRCor (ms per arch). Images
are random uint8 of the configured shape: speed does not depend on pixel values. Timings are medians
of repeated runs after a warm-up, with CUDA synchronisation on GPUs. The floor is FLOPs per image
(forward + backward = 3x the forward for training) over a measured matmul peak.

`mode=ab` times each of the project's speed options against its reference in the same process:
the two variants alternate (A, B, B, A, ...; `supernet.latency.wall_times`) for `ab.rounds` rounds
after a warm-up call each, so load that changes during the run falls on both. Each option reports
the median ms per call of either variant, their ratio (`speedup` = off / on) and the spread (every
call's time, the fastest and slowest round's own ratio), in JSON and in a Markdown table.
"""

from __future__ import annotations

import copy
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
from torch import nn

from predictor.benchmarks.common import run_info, write_report
from supernet.data import Arrays, NASDataModule
from supernet.evaluator import SubnetEvaluator
from supernet.latency import median_ms, sync, wall_times
from supernet.model import SuperCell, SuperNet
from supernet.module import SupernetModule
from supernet.ops import AvgPool3x3, ConvSlice
from supernet.proxies import ProxyContext, build_scoring_net, get_proxy, score_archs
from supernet.sampler import UniformSampler
from supernet.utils import resolve_bf16


def seconds(fn: Callable[[], Any], device: torch.device, repeats: int) -> float:
    """Median wall seconds of `fn` over `repeats` calls after one warm-up call (`median_ms`)."""
    return 1e-3 * median_ms(fn, device, 1, repeats)


def peak_flops(device: torch.device) -> float:
    """Measured multiply-adds per second of a large matmul (bf16 on GPU, fp32 on CPU)."""
    n = 8192 if device.type == "cuda" else 1024
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    a, b = (
        torch.randn(n, n, device=device, dtype=dtype),
        torch.randn(n, n, device=device, dtype=dtype),
    )
    return n**3 / seconds(lambda: a @ b, device, 5)


def archs_for(space: Any, n: int, seed: int) -> list[tuple[int, ...]]:
    rng = random.Random(seed)
    return [
        tuple(rng.randrange(len(space.ops)) for _ in range(space.num_decisions)) for _ in range(n)
    ]


def compile_ops(net: nn.Module, backend: str = "inductor") -> int:
    """Compiles every candidate op of `net`'s cells in place (`nn.Module.compile`), so a sampled
    path runs compiled ops: each module compiles once per input shape, not once per arch. Raises
    dynamo's recompile limit, which a shared `forward` over many modules would otherwise hit,
    silently falling back to eager. Returns how many modules were compiled."""
    import torch._dynamo

    torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 1024)
    ops: list[nn.Module] = []
    for cell in (m for m in net.modules() if isinstance(m, SuperCell)):
        ops += getattr(cell, "convs", [])  # shared convs: ConvSlice ops only call them
        ops += [op for edge in cell.edges for op in edge if not isinstance(op, ConvSlice)]
    for op in ops:
        op.compile(backend=backend, dynamic=False)
    return len(ops)


def torch_pooling(net: nn.Module) -> nn.Module:
    """Swaps every `AvgPool3x3` of `net` for torch's `nn.AvgPool2d(3, 1, 1,
    count_include_pad=False)`, the op a plain NB201 implementation uses: the same values, 1.4-17x
    slower forward + backward on the CPUs measured (BENCHMARKS.md)."""
    for module in list(net.modules()):
        for name, child in module.named_children():
            if isinstance(child, AvgPool3x3):
                setattr(module, name, nn.AvgPool2d(3, 1, 1, count_include_pad=False))
    return net


def nhwc(cfg: DictConfig) -> bool:
    """`bench.channels_last` as a bool: `auto` is the supernet's own default, on. On CPUs NHWC
    made bf16 training steps 1.05-1.16x slower (AMD EPYC; BatchNorm's NHWC backward took 6-7x as
    long) until `supernet.ops.BatchNorm2d` ran it as an NCHW view (BENCHMARKS.md)."""
    value = cfg.bench.channels_last
    if isinstance(value, str) and value.strip().lower() == "auto":
        return True
    if not isinstance(value, bool):
        raise ValueError(f"bench.channels_last={value!r}; expected true, false or auto")
    return value


def baseline_net(cfg: DictConfig, space: Any, device: torch.device) -> SuperNet:
    """A fresh supernet for an eager baseline: with torch's pooling when `bench.baseline_pool` is
    `torch` (the plain implementation the project is measured against), the project's otherwise."""
    if cfg.bench.baseline_pool not in ("torch", "project"):
        raise ValueError(
            f"bench.baseline_pool={cfg.bench.baseline_pool!r}; expected torch or project"
        )
    net = SuperNet(space, cfg.bench.num_classes, cfg.bench.image_shape[0])
    return (torch_pooling(net) if cfg.bench.baseline_pool == "torch" else net).to(device)


def train_loop(
    cfg: DictConfig,
    space: Any,
    dm: NASDataModule,
    device: torch.device,
    steps: int,
    batch_size: int,
    bf16: bool = False,
    channels_last: bool = False,
    compile: bool = False,
    baseline: bool = False,
) -> Callable[[], None]:
    """`steps` plain eager SGD steps (one random arch each) of a fresh supernet: fp32 NCHW unless
    asked for bf16 autocast (what the trainer's bf16-mixed does), channels_last weights and
    batches (what `SupernetModule(channels_last=True)` does) or compiled cell ops (`compile_ops`);
    `baseline`: the net of `baseline_net`."""
    x_all, y_all = dm.splits["train"]
    torch.manual_seed(0)
    if baseline:
        net = baseline_net(cfg, space, device)
    else:
        net = SuperNet(space, cfg.bench.num_classes, cfg.bench.image_shape[0]).to(device)
    if compile:
        compile_ops(net)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    net = net.to(memory_format=fmt)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    archs = archs_for(space, steps, 0)
    mean, std = dm.mean.to(device).view(1, -1, 1, 1), dm.std.to(device).view(1, -1, 1, 1)

    def loop() -> None:
        for i, arch in enumerate(archs):
            j = (i * batch_size) % max(1, len(y_all) - batch_size)
            x = ((x_all[j : j + batch_size].float() - mean) / std).contiguous(memory_format=fmt)
            with torch.autocast(device.type, torch.bfloat16, enabled=bf16):
                logits = net(x, arch)
            loss = F.cross_entropy(logits.float(), y_all[j : j + batch_size])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
            opt.step()

    return loop


def baseline_train_s(
    cfg: DictConfig, space: Any, dm: NASDataModule, device: torch.device
) -> float:
    """Median seconds of `train_steps` plain eager fp32 SGD steps (one random arch each)."""
    loop = train_loop(
        cfg, space, dm, device, cfg.bench.train_steps, cfg.bench.batch_size, baseline=True
    )
    return seconds(loop, device, cfg.bench.repeats)


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
        channels_last=nhwc(cfg),
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
        "ours_channels_last": nhwc(cfg),
        "baseline_pool": cfg.bench.baseline_pool,
    }


def bench_eval(cfg: DictConfig, space: Any, dm: NASDataModule, device: torch.device) -> dict:
    """ms per subnet on `eval_images` held-out images: eager fp32 baseline vs SubnetEvaluator (bf16
    as `bench.bf16` says, `auto` as the evaluator's default), same weights."""
    net = baseline_net(cfg, space, device).eval()
    archs = archs_for(space, cfg.bench.eval_subnets, 1)
    heldout = dm.loader("heldout", limit=cfg.bench.eval_images)
    heldout.batch_size = cfg.bench.eval_batch_size

    @torch.no_grad()
    def baseline() -> None:
        for arch in archs:
            for x, y in heldout:
                (net(x, arch).argmax(1) == y).sum().item()

    base_s = seconds(baseline, device, cfg.bench.repeats)
    ours = SuperNet(space, cfg.bench.num_classes, cfg.bench.image_shape[0]).to(device).eval()
    ours.load_state_dict(net.state_dict())  # pooling has no state: the same weights
    if nhwc(cfg):
        ours = ours.to(memory_format=torch.channels_last)
    bf16 = resolve_bf16("bench.bf16", cfg.bench.bf16, device)
    evaluator = SubnetEvaluator(ours, heldout, "batch", bf16=bf16)
    ours_s = seconds(lambda: [evaluator.evaluate(a) for a in archs], device, cfg.bench.repeats)
    n = len(archs)
    return {
        "baseline_ms_per_subnet": 1e3 * base_s / n,
        "ours_ms_per_subnet": 1e3 * ours_s / n,
        "speedup": base_s / ours_s,
        "images": min(cfg.bench.eval_images, len(dm.splits["heldout"][1])),
        "subnets": n,
        "ours_bf16": bf16,
        "baseline_pool": cfg.bench.baseline_pool,
    }


def bench_wrcor(cfg: DictConfig, space: Any, dm: NASDataModule, device: torch.device) -> dict:
    """ms per arch: a freshly built network per arch in fp32 (baseline) vs one scoring net for all,
    under bf16 as `bench.bf16` says (`auto`: the zero-shot stage's default)."""
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

    base_s = seconds(baseline, device, cfg.bench.repeats)
    net = build_scoring_net(space, cfg.bench.num_classes, cfg.bench.image_shape[0], 0, device)
    bf16 = resolve_bf16("bench.bf16", cfg.bench.bf16, device)
    ours_ctx = ProxyContext(space, ctx.input_shape, ctx.num_classes, bf16=bf16)
    ours_s = seconds(
        lambda: list(score_archs(net, archs, x, y, ["wrcor"], ours_ctx)), device, cfg.bench.repeats
    )
    n = len(archs)
    return {
        "baseline_ms_per_arch": 1e3 * base_s / n,
        "ours_ms_per_arch": 1e3 * ours_s / n,
        "speedup": base_s / ours_s,
        "archs": n,
        "ours_bf16": bf16,
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


# One A/B pair: its name in the report, the two calls (the option on, its reference off), and what
# on, off and one call are.
Pair = tuple[str, Callable[[], Any], Callable[[], Any], dict[str, str]]


def ab_pool(cfg: DictConfig, space: Any, dm: NASDataModule, device: torch.device) -> list[Pair]:
    """avg_pool_3x3 as a depthwise convolution (`AvgPool3x3`) vs torch's pooling, forward +
    backward, at the three NB201 stage sizes (C channels at the image size, 2C at half, 4C at a
    quarter)."""
    ref = nn.AvgPool2d(3, 1, 1, count_include_pad=False)
    pairs = []
    for k in range(3):
        c, h = space.C * 2**k, cfg.bench.image_shape[1] // 2**k
        x = torch.randn(cfg.ab.batch_size, c, h, h, device=device, requires_grad=True)
        g = torch.randn_like(x)

        def passes(op: nn.Module, x: torch.Tensor = x, g: torch.Tensor = g) -> Callable[[], Any]:
            return lambda: [torch.autograd.grad(op(x), x, g) for _ in range(cfg.ab.pool_calls)]

        what = {
            "on": "AvgPool3x3 (depthwise conv)",
            "off": "nn.AvgPool2d(3, 1, 1, count_include_pad=False)",
            "call": f"{cfg.ab.pool_calls} forward+backward of {tuple(x.shape)}",
        }
        pairs.append((f"pool_{c}x{h}x{h}", passes(AvgPool3x3()), passes(ref), what))
    return pairs


def ab_wrcor_bf16(
    cfg: DictConfig, space: Any, dm: NASDataModule, device: torch.device
) -> list[Pair]:
    """WRCor (`score_archs` on one scoring net, as `nas-zeroshot` runs it) with `zeroshot.bf16` on
    and off; the two contexts share the net's recorder and scratch."""
    archs = archs_for(space, cfg.ab.wrcor_archs, 2)
    x, y = next(iter(dm.loader("train")))
    x, y = x[:64], y[:64]
    net = build_scoring_net(space, cfg.bench.num_classes, cfg.bench.image_shape[0], 0, device)
    cache: dict = {}
    shape, classes = tuple(cfg.bench.image_shape), cfg.bench.num_classes

    def score(bf16: bool) -> Callable[[], Any]:
        ctx = ProxyContext(space, shape, classes, cache=cache, bf16=bf16)
        return lambda: list(score_archs(net, archs, x, y, ["wrcor"], ctx))

    what = {"on": "bf16 autocast", "off": "fp32", "call": f"{len(archs)} archs, batch {len(y)}"}
    return [("wrcor_bf16", score(True), score(False), what)]


def ab_eval(option: str) -> Callable[..., list[Pair]]:
    """`SubnetEvaluator` (bn=batch) with `option` (bf16 autocast, or channels_last weights as
    `bench_eval` sets them) on and off; both on CPUs too, unlike `bench_eval`'s bf16."""

    def pairs(cfg: DictConfig, space: Any, dm: NASDataModule, device: torch.device) -> list[Pair]:
        torch.manual_seed(0)
        net = SuperNet(space, cfg.bench.num_classes, cfg.bench.image_shape[0]).to(device).eval()
        archs = archs_for(space, cfg.ab.eval_subnets, 1)
        heldout = dm.loader("heldout", limit=cfg.ab.eval_images)
        heldout.batch_size = cfg.bench.eval_batch_size
        on_net = net
        if option == "channels_last":
            on_net = copy.deepcopy(net).to(memory_format=torch.channels_last)
        if option == "compile":
            on_net = copy.deepcopy(net)
            compile_ops(on_net)
        on = SubnetEvaluator(on_net, heldout, "batch", bf16=option == "bf16")
        off = SubnetEvaluator(net, heldout, "batch")
        images = min(cfg.ab.eval_images, len(dm.splits["heldout"][1]))
        what = {"on": option, "off": "fp32 NCHW", "call": f"{len(archs)} subnets, {images} images"}
        return [
            (
                f"eval_{option}",
                lambda: [on.evaluate(a) for a in archs],
                lambda: [off.evaluate(a) for a in archs],
                what,
            )
        ]

    return pairs


def ab_train(option: str) -> Callable[..., list[Pair]]:
    """Eager supernet training steps (`train_loop`) with `option` (bf16 autocast or channels_last)
    on and off; two supernets of the same initial weights, one per variant."""

    def pairs(cfg: DictConfig, space: Any, dm: NASDataModule, device: torch.device) -> list[Pair]:
        steps, bs = cfg.ab.train_steps, cfg.ab.batch_size
        on = train_loop(cfg, space, dm, device, steps, bs, **{option: True})
        off = train_loop(cfg, space, dm, device, steps, bs)
        what = {"on": option, "off": "fp32 NCHW", "call": f"{steps} SGD steps of {bs} images"}
        return [(f"train_{option}", on, off, what)]

    return pairs


AB_OPTIONS: dict[str, Callable[..., list[Pair]]] = {
    "pool": ab_pool,
    "wrcor_bf16": ab_wrcor_bf16,
    "eval_bf16": ab_eval("bf16"),
    "eval_channels_last": ab_eval("channels_last"),
    "train_bf16": ab_train("bf16"),
    "train_channels_last": ab_train("channels_last"),
    # not in the default list: the first calls compile every op (tens of seconds at C=8 N=1)
    "eval_compile": ab_eval("compile"),
    "train_compile": ab_train("compile"),
}


def ab_times(
    on: Callable[[], Any], off: Callable[[], Any], device: torch.device, rounds: int
) -> dict:
    """Medians, ratio and spread of `rounds` interleaved calls of `on` and `off` (one warm-up call
    each first)."""
    on_s, off_s = wall_times([on, off], device, 1, rounds)
    ratios = [b / a for a, b in zip(on_s, off_s)]
    return {
        "on_ms": 1e3 * statistics.median(on_s),
        "off_ms": 1e3 * statistics.median(off_s),
        "speedup": statistics.median(off_s) / statistics.median(on_s),
        "round_speedup_min": min(ratios),
        "round_speedup_max": max(ratios),
        "on_calls_ms": [1e3 * t for t in on_s],
        "off_calls_ms": [1e3 * t for t in off_s],
    }


def ab_markdown(ab: dict[str, dict], info: dict[str, Any]) -> str:
    """The A/B table, headed by where and when it was measured."""
    lines = [
        f"`{info['command']}` at {info['git']}, {info['date']}, on {info['device']} "
        f"({info['cpu']}, {info['torch_threads']} torch threads, load average "
        + " ".join(f"{x:.2f}" for x in info["load_average"])
        + ")",
        "",
        "| option | on | off | one call | on ms | off ms | speed-up (off/on) | rounds' range |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in ab.items():
        lines.append(
            f"| {name} | {r['on']} | {r['off']} | {r['call']} | {r['on_ms']:.2f} | "
            f"{r['off_ms']:.2f} | {r['speedup']:.2f}x | "
            f"{r['round_speedup_min']:.2f}-{r['round_speedup_max']:.2f}x |"
        )
    return "\n".join(lines) + "\n"


def run_ab(
    cfg: DictConfig,
    space: Any,
    dm: NASDataModule,
    device: torch.device,
    save: Callable[[dict], Any],
) -> dict:
    """Every option of `ab.options`, on against off, `ab.rounds` interleaved rounds each; `save`
    gets the results so far after each option (a run cut short keeps what it measured)."""
    unknown = [o for o in cfg.ab.options if o not in AB_OPTIONS]
    if unknown:
        raise ValueError(f"ab.options: unknown {unknown}; expected some of {sorted(AB_OPTIONS)}")
    ab: dict[str, dict] = {}
    for option in cfg.ab.options:
        for name, on, off, what in AB_OPTIONS[option](cfg, space, dm, device):
            ab[name] = {**what, **ab_times(on, off, device, cfg.ab.rounds)}
            brief = {k: v for k, v in ab[name].items() if not k.endswith("calls_ms")}
            print(name, json.dumps(brief))
        save(ab)
    return ab


def run(cfg: DictConfig) -> dict[str, Any]:
    """Every configured stage against its baseline (`mode=compare`), or every option of `ab.options`
    on and off (`mode=ab`, also a Markdown table to `md_out`); writes JSON to `out`."""
    if cfg.mode not in ("compare", "ab"):
        raise ValueError(f"mode={cfg.mode!r}; expected compare or ab")
    device = torch.device("cuda" if torch.cuda.is_available() and cfg.device != "cpu" else "cpu")
    torch.backends.cudnn.benchmark = True
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    space = instantiate(cfg.space)
    dm = synthetic_data(cfg, device)
    result: dict[str, Any] = {
        "mode": cfg.mode,
        "space": {"C": space.C, "N": space.N},
        "image_shape": list(cfg.bench.image_shape),
    }
    config = OmegaConf.to_container(cfg, resolve=True)
    if cfg.mode == "ab":

        def save(ab: dict) -> dict[str, Any]:
            md = ab_markdown(ab, run_info(device))
            return write_report(cfg.out, {**result, "ab": ab}, config, md, cfg.md_out, device)

        return save(run_ab(cfg, space, dm, device, save))
    result.update(floors(cfg, space, device))
    for stage in cfg.stages:
        result[stage] = {"train": bench_train, "eval": bench_eval, "wrcor": bench_wrcor}[stage](
            cfg, space, dm, device
        )
        print(stage, json.dumps(result[stage]))
    return write_report(cfg.out, result, config, device=device)


def report(cfg: DictConfig, result: dict[str, Any]) -> None:
    """The whole record and where it was written."""
    print(json.dumps(result, indent=2, default=str))
    table = f" and {cfg.md_out}" if cfg.mode == "ab" else ""
    print(f"written to {cfg.out}{table}; config: {OmegaConf.to_yaml(cfg.space)}")

"""Zero-shot proxy scores: `python scripts/zeroshot.py archs=all|classes|FILE out=FILE proxies=[...]`.

Which proxies and how (zeroshot.limit, vote_of, batch_size, chunk, repeats, cells, bf16) is the
`zeroshot` node of the proxies config group (conf/proxies/), the same under nas-zeroshot and
nas-bench-nb201.

Every arch is scored on one fixed, seeded batch of training images by the path of a supernet that is
initialised once from the seed (see `supernet.proxies.build_scoring_net`); with `zeroshot.repeats=k`,
by k such (network, batch) pairs, seeds seed..seed+k-1, each score the mean of theirs. With
`zeroshot.cells=N` the scoring network has N cells per stage whatever the space's N (the archs are
the same; a deeper network can rank them better, see `scoring_space`). Rows go to
`out` as they are scored; a rerun skips the archs already there and redoes a line cut short by a
kill.
"""

from __future__ import annotations

import csv
import glob
import io
import logging
import multiprocessing
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from supernet.classes import class_representatives
from supernet.progress import LogProgress
from supernet.proxies import (
    ProxyContext,
    build_scoring_net,
    fixed_batch,
    get_proxy,
    mean_scores,
    rank_vote,
    reads_bf16,
)
from supernet.results import ResultsCSV, merge_shards, read_archs_csv, shard_path
from supernet.space import Arch, SearchSpace, get_space
from supernet.utils import (
    DataError,
    atomic_write_bytes,
    check_count,
    resolve_bf16,
    resolve_device,
    write_run_info,
)

log = logging.getLogger(__name__)


def plan(cfg: DictConfig) -> tuple[list[str], list[str]]:
    """(per-arch proxies, proxies voted on) of `cfg.zeroshot`, the node the proxies group builds
    (`proxies=[wrcor,naswot,vote]` selects conf/proxies/<name>.yaml, in that order); unknown names
    raise before anything runs. A proxy set to null (`zeroshot.proxies.wrcor: null`) is left out:
    that is how a recipe drops one, since a defaults list can add to the group but not remove."""
    zs = cfg.zeroshot
    listed = zs.get("proxies") or {}
    proxies = [str(p) for p, v in listed.items() if v is not None]
    off = [str(p) for p, v in listed.items() if v is None]
    names = [p for p in proxies if p != "vote"]
    if not names:
        why = ""
        if off:
            why = f"; {off} set to null (off): zeroshot.proxies.{off[0]}={{}} turns it on"
        raise DataError(
            f"proxies={proxies}: expected at least one proxy to score (conf/proxies/: "
            f"wrcor meco naswot synflow params flops, and vote){why}"
        )
    for n in names:
        get_proxy(n)
    vote_of = [str(p) for p in zs.vote_of] if zs.get("vote_of") else []
    if "vote" in proxies and not vote_of:
        vote_of = names
    bad = [p for p in vote_of if p not in names]
    if bad:
        raise DataError(
            f"zeroshot.vote_of={vote_of}: {bad} not among the proxies scored ({names})"
        )
    if vote_of and len(vote_of) < 2:
        raise DataError(f"a vote needs at least two proxies, got {vote_of}")
    return names, vote_of


def write_vote(path: Path, names: list[str], vote_of: list[str]) -> None:
    """Fills the `vote` column of the whole file (a table-level score) and replaces it atomically."""
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        fields, rows = reader.fieldnames or [], list(reader)
    vote = rank_vote({n: [float(r[n]) for r in rows] for n in vote_of}, vote_of).tolist()
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for r, v in zip(rows, vote, strict=True):
        writer.writerow({**r, "vote": f"{v:.6g}"})
    atomic_write_bytes(path, buf.getvalue().encode())


def run(cfg: DictConfig) -> dict[str, Any]:
    """Scores the archs not yet in `cfg.out` (this shard's share of them; `merge=true` joins the
    shard files instead); returns the output path, counts, time and ridge counts."""
    if cfg.merge:  # the vote ranks over all archs, so it is filled after the merge
        total = merge_shards(cfg.out, cfg.num_shards)
        names, vote_of = plan(cfg)
        if vote_of and total:
            write_vote(Path(cfg.out), names, vote_of)
        return {"out": str(cfg.out), "scored": 0, "total": total, "archs": total, "merged": True}
    names, vote_of = plan(cfg)
    limit, repeats = check_settings(cfg)
    zs = cfg.zeroshot
    space = instantiate(cfg.space)
    scoring = scoring_space(space, zs.get("cells"))
    device = resolve_device(cfg.device)
    # only proxies that read it (WRCor) run under bf16, and only their files record it
    bf16 = resolve_bf16("zeroshot.bf16", zs.get("bf16", False), device)
    bf16 = bf16 and reads_bf16(names)
    workers = check_workers(zs.get("workers", 1), device)
    archs = listed_archs(cfg, space, limit)
    out_path = shard_path(cfg.out, cfg.shard, cfg.num_shards)
    fixed = {  # a file's scores share these; a bf16 or repeated file has the column: never mixed
        "seed": cfg.seed,
        "data": str(cfg.data.name),
        **({"bf16": True} if bf16 else {}),
        **({"repeats": repeats} if repeats > 1 else {}),
        **({"cells": scoring.N} if scoring is not space else {}),
    }
    columns = ["arch", *names] + (["vote"] if vote_of else []) + list(fixed)
    out = ResultsCSV(out_path, columns, fixed=fixed)
    listed = [space.to_str(a) for a in archs]
    fold_parts(out, listed)  # rows an earlier run's workers wrote before it was stopped
    resolved = OmegaConf.to_container(cfg, resolve=True)
    write_run_info(out_path.parent, "zeroshot", resolved)
    todo = [a for a in listed if a not in out]
    workers = resolve_workers(workers, device, cfg.num_shards, len(todo))
    job = ScoringJob(resolved, names, columns, fixed, bf16, vote=bool(vote_of))
    t0 = time.perf_counter()
    bar = bool(cfg.progress) and sys.stdout.isatty()
    done = len(archs) - len(todo)
    with LogProgress("zero-shot scores", len(archs), log, done, bar=bar) as progress:
        if workers > 1:
            ridge = score_in_workers(job, todo, out, workers, progress)
        else:
            ridge = job.score(todo, out, progress.advance)
    elapsed = time.perf_counter() - t0
    if vote_of and len(out) and cfg.num_shards == 1:
        write_vote(out_path, names, vote_of)
    return {
        "out": str(out_path),
        "scored": len(todo),
        "total": len(out),
        "archs": len(archs),
        "repaired": out.repaired,
        "ms_per_arch": 1e3 * elapsed / max(1, len(todo)),
        "ridge": ridge,
        "device": str(device),
        "workers": workers,
    }


@dataclass
class ScoringJob:
    """What scoring a list of archs into a results file needs, in a form a spawned worker process
    can be handed: the resolved config, the proxies, the file's columns and fixed values."""

    cfg: dict
    names: list[str]
    columns: list[str]
    fixed: dict[str, Any]
    bf16: bool
    vote: bool

    def score(
        self, archs: list[str], out: ResultsCSV, advance: Callable[[int], Any]
    ) -> dict[str, int]:
        """Scores `archs` (arch strings) into `out`, a row as each chunk is read back; returns the
        ridge counts."""
        if not archs:
            return {}
        cfg = OmegaConf.create(self.cfg)
        zs = cfg.zeroshot
        space = instantiate(cfg.space)
        scoring = scoring_space(space, zs.get("cells"))
        device = resolve_device(cfg.device)
        exact_fp32(device)
        # the stored images, whatever data.resolution says: see NASDataModule's `resolution`
        data = instantiate(cfg.data, device="cpu", resolution=0)
        data.setup()
        repeats = int(zs.get("repeats", 1))
        scorers = [
            scorer(cfg.seed + j, scoring, data, zs.batch_size, device) for j in range(repeats)
        ]
        ctx = ProxyContext(scoring, data.input_shape, data.num_classes, bf16=self.bf16)
        todo = [space.parse(a) for a in archs]
        for chunk in mean_scores(scorers, todo, self.names, ctx, chunk=zs.chunk):
            for arch, scores in chunk:
                row = {"arch": space.to_str(arch), **{n: f"{v:.12g}" for n, v in scores.items()}}
                out.append({**row, "vote": ""} if self.vote else row)
            advance(len(chunk))
        return ctx.counts()


# `zeroshot.workers=auto`: below this many archs to score, one process (a worker costs a few
# seconds to start); at most this many workers (each holds its own copy of the training images).
AUTO_MIN_ARCHS = 500
AUTO_MAX_WORKERS = 8


def check_workers(value: Any, device: torch.device) -> int | None:
    """`zeroshot.workers` checked before anything runs: an int, or None for auto.

    Raises:
        DataError: not `auto` or an integer >= 1; above 1 on a GPU.
    """
    if str(value) == "auto":
        return None
    n = check_count("zeroshot.workers", value, 1, "processes scoring archs on the CPU, or auto")
    if n > 1 and device.type != "cpu":
        raise DataError(
            f"zeroshot.workers={n} on {device}: expected 1 (or auto) on a GPU; worker processes "
            "split the archs between CPU cores"
        )
    return n


def resolve_workers(workers: int | None, device: torch.device, num_shards: int, todo: int) -> int:
    """How many processes score `todo` archs: `workers` (`check_workers`'s), or for auto (None)
    one per usable core on a CPU, for 500 archs or more and when no launcher has sharded the run
    already; else 1.

    The networks are small, so a CPU core scores more archs as its own single-threaded process
    than as a second intra-op thread: the CPU preset's WRCor + MeCo at five cells per stage, 2
    processes of 1 thread against 1 of 2 threads, 86.8 against 122.7 ms per arch on 2 cores, with
    the same scores to the bit (BENCHMARKS.md, issue 16).
    """
    if workers is None:
        if device.type != "cpu" or num_shards > 1 or todo < AUTO_MIN_ARCHS:
            return 1
        cores = (
            len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        )
        workers = min(cores or 1, AUTO_MAX_WORKERS)
    return max(1, min(workers, todo))


def part_path(out: Path, k: int) -> Path:
    """Where worker `k` writes its rows: beside the results file, named after it."""
    return out.with_name(f"{out.stem}.part-{k}{out.suffix}")


def fold_parts(out: ResultsCSV, order: list[str]) -> int:
    """Moves the rows of the worker files beside `out` (`<stem>.part-K<suffix>`) into `out`, in
    the order of the arch strings `order` (so the file does not depend on how many workers wrote
    it), and removes those files; returns how many rows were new. A worker file of other settings
    is refused, untouched, as `out` itself would be."""
    stem, suffix = glob.escape(out.path.stem), glob.escape(out.path.suffix)
    paths = sorted(out.path.parent.glob(f"{stem}.part-[0-9]*{suffix}"))
    rows: dict[str, dict[str, str]] = {}
    for path in paths:
        with ResultsCSV(path, out.columns, out.key, out.fixed) as part:
            rows.update((k, row) for k, row in part.rows.items() if k not in out)
    position = {a: i for i, a in enumerate(order)}
    for key in sorted(rows, key=lambda k: position.get(k, len(position))):
        out.append(rows[key])
    for path in paths:
        path.unlink()
    return len(rows)


def data_rows(path: Path) -> int:
    """Complete rows in a results file being written (0 before its header)."""
    try:
        return max(0, path.read_bytes().count(b"\n") - 1)
    except FileNotFoundError:
        return 0


def score_part(
    job: ScoringJob, archs: list[str], path: str, threads: int, parent: int
) -> dict[str, int] | None:
    """One worker process: scores `archs` into its own file with `threads` torch threads; returns
    the ridge counts (None when stopped by Ctrl-C, which reaches every process). A worker whose
    `parent` process has died (SIGKILL, or a plain `kill`) exits after its current chunk: its
    rows are on disk, and the next run folds them in."""
    torch.set_num_threads(threads)

    def orphaned(n: int) -> None:
        if os.getppid() != parent:
            os._exit(1)  # every row is one write already made; the OS releases the file's lock

    try:
        with ResultsCSV(path, job.columns, fixed=job.fixed) as out:
            return job.score(archs, out, orphaned)
    except KeyboardInterrupt:
        return None


def score_in_workers(
    job: ScoringJob, archs: list[str], out: ResultsCSV, workers: int, progress: LogProgress
) -> dict[str, int]:
    """Scores `archs` in `workers` spawned processes, every `workers`-th arch each, and folds
    their files into `out`, also when one fails or the run is stopped; returns the summed ridge
    counts. A score depends only on (arch, seed, batch), so the rows are those one process would
    write, in another order."""
    threads = max(1, torch.get_num_threads() // workers)
    paths = [part_path(out.path, k) for k in range(workers)]
    context = multiprocessing.get_context("spawn")  # fork would copy torch's thread pools
    try:
        with context.Pool(workers) as pool:
            pending = [
                pool.apply_async(
                    score_part, (job, archs[k::workers], str(paths[k]), threads, os.getpid())
                )
                for k in range(workers)
            ]
            seen = 0
            while not all(p.ready() for p in pending):
                time.sleep(1.0)
                now = sum(data_rows(p) for p in paths)
                progress.advance(now - seen)
                seen = now
            counts = [p.get() for p in pending]  # a worker's exception is raised here
            progress.advance(sum(data_rows(p) for p in paths) - seen)
    finally:
        fold_parts(out, archs)
    total: dict[str, int] = {}
    for c in counts:
        for key, v in (c or {}).items():
            total[key] = total.get(key, 0) + v
    return total


def scorer(
    seed: int, space: SearchSpace, data: Any, batch_size: int, device: torch.device
) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    """The network and scoring batch of `seed`: repeat j of `zeroshot.repeats` uses seed + j, so
    one repeat is the seed's own score."""
    x_train, y_train = data.splits["train"]
    x, y = fixed_batch(x_train, y_train, data.mean, data.std, batch_size, seed, device)
    return build_scoring_net(space, data.num_classes, data.input_shape[0], seed, device), x, y


def exact_fp32(device: torch.device) -> None:
    """On a GPU: correlations need fp32 responses (no TF32 convs or matmuls); static shapes."""
    if device.type == "cuda":
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.benchmark = True


def scoring_space(space: SearchSpace, cells: int | None) -> SearchSpace:
    """The space whose networks are scored: `space`, or with `cells` (not None) cells per stage.

    MeCo over 1,500 NB201 classes at C=8 on CIFAR-10 ranked at Kendall 0.68-0.69 with one cell per
    stage and 0.74 with five (BENCHMARKS.md): a deeper network shows more of how a cell's ops
    compose, at 3x the time per arch.

    Raises:
        DataError: `cells` below 1, or a space without cells per stage.
    """
    if cells is None:
        return space
    n = check_count("zeroshot.cells", cells, 1, "cells per stage of the scoring network")
    config = space.config()
    if "N" not in config:
        raise DataError(
            f"zeroshot.cells={cells}: the {space.name} space has no cells per stage to set; "
            "expected null"
        )
    return get_space(space.name, **{**config, "N": n})


def check_settings(cfg: DictConfig) -> tuple[int, int]:
    """Checks the counts before anything runs; returns `zeroshot.limit` (0: every listed arch) and
    `zeroshot.repeats`."""
    zs = cfg.zeroshot
    # a correlation or a log det over one image is degenerate: a dead cell then outscores live ones
    check_count(
        "zeroshot.batch_size", zs.batch_size, 2, "images of the fixed scoring batch; WRCor uses 64"
    )
    check_count("zeroshot.chunk", zs.chunk, 1)
    check_count("shard", cfg.shard, 0)
    check_count("num_shards", cfg.num_shards, 1)
    repeats = check_count(
        "zeroshot.repeats", zs.get("repeats", 1), 1, "initialisations averaged per score"
    )
    limit = check_count(
        "zeroshot.limit", zs.limit, 0, "score the first N archs of the list; 0: all"
    )
    return limit, repeats


def listed_archs(cfg: DictConfig, space: SearchSpace, limit: int) -> list[Arch]:
    """This shard's share of the archs `cfg.archs` names, the first `limit` of them (0: all);
    every process lists the same archs and keeps every `num_shards`-th."""
    if str(cfg.archs) == "all":
        archs = list(space.all_archs())
    elif str(cfg.archs) == "classes":  # archs that compute the same function score once
        archs = class_representatives(space)
    elif Path(str(cfg.archs)).suffix == ".csv":
        archs = read_archs_csv(cfg.archs, space)
    else:
        raise DataError(
            f"archs={cfg.archs!r}: expected `all`, `classes` or a .csv file with an arch column"
        )
    archs = archs[:limit] if limit else archs
    return archs[cfg.shard :: cfg.num_shards]


def report(cfg: DictConfig, r: dict[str, Any]) -> None:
    if r.get("merged"):
        log.info(f"{cfg.num_shards} shard files merged: {r['total']} archs in {r['out']}")
        return
    # only the log-det proxies (WRCor, NASWOT) ridge anything
    workers = f", {r['workers']} processes" if r.get("workers", 1) > 1 else ""
    ridged = f"; ridged log dets: {r['ridge']}" if r["ridge"] else ""
    log.info(
        f"{r['scored']} archs scored ({r['ms_per_arch']:.1f} ms/arch on {r['device']}"
        f"{workers}), "
        f"{r['total']} in {r['out']}{ridged}"
    )

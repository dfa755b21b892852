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
import io
import logging
import sys
import time
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
    exact_fp32(device)
    archs = listed_archs(cfg, space, limit)
    out_path = shard_path(cfg.out, cfg.shard, cfg.num_shards)
    data = instantiate(cfg.data, device="cpu", resolution=0)  # see NASDataModule's `resolution`
    data.setup()
    scorers = [scorer(cfg.seed + j, scoring, data, zs.batch_size, device) for j in range(repeats)]
    ctx = ProxyContext(scoring, data.input_shape, data.num_classes, bf16=bf16)
    fixed = {  # a file's scores share these; a bf16 or repeated file has the column: never mixed
        "seed": cfg.seed,
        "data": data.name,
        **({"bf16": True} if bf16 else {}),
        **({"repeats": repeats} if repeats > 1 else {}),
        **({"cells": scoring.N} if scoring is not space else {}),
    }
    columns = ["arch", *names] + (["vote"] if vote_of else []) + list(fixed)
    out = ResultsCSV(out_path, columns, fixed=fixed)
    write_run_info(out_path.parent, "zeroshot", OmegaConf.to_container(cfg, resolve=True))
    todo = [a for a in archs if space.to_str(a) not in out]
    t0 = time.perf_counter()
    bar = bool(cfg.progress) and sys.stdout.isatty()
    done = len(archs) - len(todo)
    with LogProgress("zero-shot scores", len(archs), log, done, bar=bar) as progress:
        for chunk in mean_scores(scorers, todo, names, ctx, chunk=zs.chunk):
            for arch, scores in chunk:
                row = {"arch": space.to_str(arch), **{n: f"{v:.12g}" for n, v in scores.items()}}
                out.append({**row, "vote": ""} if vote_of else row)
            progress.advance(len(chunk))
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
        "ridge": ctx.counts(),
        "device": str(device),
    }


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
    ridged = f"; ridged log dets: {r['ridge']}" if r["ridge"] else ""
    log.info(
        f"{r['scored']} archs scored ({r['ms_per_arch']:.1f} ms/arch on {r['device']}), "
        f"{r['total']} in {r['out']}{ridged}"
    )

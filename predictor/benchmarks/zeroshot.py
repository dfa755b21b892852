"""Rank correlation of the zero-shot proxies with NAS-Bench-201's CIFAR-10 test accuracy, and their cost.

    python scripts/benchmark_zeroshot.py --data-root data/cifar10 --n 1000 --seeds 0 1

Scores `--n` archs drawn with `--arch-seed` on the full-size NB201 network (C=16, N=5) and one fixed
CIFAR-10 training batch per seed (the seed draws both the batch and the initialisation), then prints
Spearman and Kendall of each proxy (and of rank votes) against `cifar10_test`, joined on the arch
string, and ms per arch measured per proxy. Results are written to `--out` as JSON after every
proxy, so a long run that is stopped keeps what it finished.
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
from scipy import stats

from supernet.data import NASDataModule
from supernet.proxies import (
    ProxyContext,
    build_scoring_net,
    fixed_batch,
    rank_vote,
    score_archs,
)
from supernet.space import NB201Space
from supernet.utils import git_hash

ROOT = Path(__file__).resolve().parents[2]  # the checkout

BENCH = ROOT.parent / "shared" / "data" / "nb201_cifar10.csv"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data-root", default=str(ROOT / "data" / "cifar10"))
    p.add_argument("--bench", default=str(BENCH), help="NB201 CSV with arch and cifar10_test")
    p.add_argument("--n", type=int, default=1000, help="random archs to score")
    p.add_argument("--arch-seed", type=int, default=0)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="batch/init seeds")
    p.add_argument(
        "--proxies", nargs="+", default=["wrcor", "naswot", "synflow", "params", "flops"]
    )
    p.add_argument(
        "--extra-seed-proxies",
        nargs="+",
        default=None,
        help="proxies scored for seeds after the first (default: all)",
    )
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--C", type=int, default=16)
    p.add_argument("--N", type=int, default=5)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    p.add_argument("--out", default=str(ROOT / ".notes" / "zeroshot_benchmark.json"))
    return p.parse_args(argv)


def correlations(scores: list[float], truth: list[float]) -> dict[str, float]:
    return {
        "spearman": float(stats.spearmanr(scores, truth).statistic),
        "kendall": float(stats.kendalltau(scores, truth).statistic),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    bench, data_root = Path(args.bench), Path(args.data_root)
    if not bench.is_file():
        print(f"skip: benchmark table {bench} not found (needs ../shared next to the repo)")
        return 0
    if (
        not (data_root / "train.npz").is_file()
        and not (data_root / "cifar-10-batches-py").is_dir()
    ):
        print(
            f"skip: CIFAR-10 not found in {data_root}; decode it with "
            f"`python {ROOT.parent / 'shared/tools/cifar10_from_jpeg.py'} {data_root}`"
        )
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(
        "cuda"
        if args.device == "auto" and torch.cuda.is_available()
        else ("cpu" if args.device == "auto" else args.device)
    )
    if device.type == "cuda":  # correlations need fp32 responses: no TF32 convs; static shapes
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.benchmark = True
    with open(bench, newline="") as f:
        truth = {row["arch"]: float(row["cifar10_test"]) for row in csv.DictReader(f)}
    space = NB201Space(C=args.C, N=args.N)
    g = torch.Generator().manual_seed(args.arch_seed)
    archs = [
        space.from_index(i) for i in torch.randperm(space.size, generator=g)[: args.n].tolist()
    ]
    acc = [truth[space.to_str(a)] for a in archs]

    dm = NASDataModule(name="cifar10", root=str(data_root), seed=0, device="cpu")
    dm.setup()
    x_train, y_train = dm.splits["train"]
    result: dict = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "commit": git_hash(),
        "device": str(device),
        "cpu": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "argv": sys.argv,
        "n_archs": len(archs),
        "space": {"C": args.C, "N": args.N},
        "batch_size": args.batch_size,
        "seeds": {},
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for k, seed in enumerate(args.seeds):
        names = (
            args.proxies if k == 0 or args.extra_seed_proxies is None else args.extra_seed_proxies
        )
        x, y = fixed_batch(x_train, y_train, dm.mean, dm.std, args.batch_size, seed, device)
        net = build_scoring_net(space, 10, 3, seed, device)
        ctx = ProxyContext(space, (3, 32, 32), 10)
        res: dict = result["seeds"].setdefault(str(seed), {"proxies": {}})
        scores: dict[str, list[float]] = {}
        for name in names:
            list(score_archs(net, archs[:2], x, y, [name], ctx))  # warm-up, not timed
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            vals = [
                s[name]
                for chunk in score_archs(net, archs, x, y, [name], ctx, chunk=32)
                for _, s in chunk
            ]
            ms = (time.perf_counter() - t0) / len(archs) * 1e3
            scores[name] = vals
            res["proxies"][name] = {**correlations(vals, acc), "ms_per_arch": ms}
            print(
                f"seed {seed} {name:8s} spearman {res['proxies'][name]['spearman']:.4f} "
                f"kendall {res['proxies'][name]['kendall']:.4f} {ms:.1f} ms/arch",
                flush=True,
            )
            res["ridge"] = ctx.counts()
            out.write_text(json.dumps(result, indent=2))
        live = [n for n in ("wrcor", "naswot", "synflow") if n in scores]
        for label, subset in (("vote(" + ",".join(live) + ")", live), ("vote(all)", list(scores))):
            if len(subset) >= 2:
                v = rank_vote(scores, subset).tolist()
                res["proxies"][label] = correlations(v, acc)
                print(
                    f"seed {seed} {label} spearman {res['proxies'][label]['spearman']:.4f} "
                    f"kendall {res['proxies'][label]['kendall']:.4f}",
                    flush=True,
                )
        torch.save(
            {"archs": [space.to_str(a) for a in archs], "scores": scores},
            out.with_suffix(f".seed{seed}.pt"),
        )
        out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Does the top-1 arch of `make run`, retrained standalone, beat random archs retrained the same way?

For each seed S it runs the main job (`nas-run seed=S`), retrains its `best_arch.json` with
`nas-retrain arch=best_arch.json seed=S`, and retrains `--num-random` archs drawn uniformly
from the NB201 cell space with `random.Random(1000 + S)` the same way (issue 14). Both commands
run as a user would run them (`python -c` of their entry points in `--python`, so no checkout or
installed script is needed), one process at a time, under `nice`, from the current folder. Finished steps are reused on a
rerun (a `best_arch.json` / `retrain.json` already in place). It writes `benchmark_pick.json` and
`benchmark_pick.md` in `--out` and prints the table:

    nas-bench-pick --seeds 0 1 2 --num-random 10 --out /tmp/pick

With `--folds K` every retrain is `nas-retrain ... folds=K`: K networks, tested on the K folds of
all the images, so an accuracy is measured on every image (digits: 1,797, against its 300-image
test split) and averages K trainings.

It stays argparse, not Hydra: it composes no config of its own, it orchestrates the runs of two
Hydra commands (each with its own config and output folder).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from predictor.benchmarks.common import write_report
from supernet.space import NB201Space

ENTRY = {  # the console commands it runs, as `python -c` of their entry points
    "run": "from predictor.cli import run; run()",
    "retrain": "from supernet.cli import retrain; retrain()",
}
RNG_OFFSET = 1000  # random archs of seed S come from random.Random(RNG_OFFSET + S)


def random_archs(seed: int, n: int) -> list[str]:
    """`n` arch strings drawn uniformly (with replacement) from the 15,625 NB201 cells."""
    space, rng = NB201Space(), random.Random(RNG_OFFSET + seed)
    return [space.to_str(space.sample(rng)) for _ in range(n)]


def call(args: list[str], log: Path, env: dict[str, str], tries: int, wait_s: float) -> None:
    """Runs `args` (stdout + stderr to `log`), retrying a failure `tries - 1` times.

    Raises:
        RuntimeError: the last try failed.
    """
    for attempt in range(1, tries + 1):
        with log.open("w") as fh:
            rc = subprocess.call(args, stdout=fh, stderr=subprocess.STDOUT, env=env)
        if rc == 0:
            return
        print(f"  exit {rc} (try {attempt}/{tries}), see {log}", flush=True)
        if attempt < tries:
            time.sleep(wait_s)
    raise RuntimeError(f"{' '.join(args)} failed {tries} times; see {log}")


def main_job(opts: argparse.Namespace, seed: int) -> Path:
    """Runs `nas-run seed=S` into `out/run_S` (unless done); returns its best_arch.json."""
    folder = Path(opts.out) / f"run_{seed}"
    best = folder / "best_arch.json"
    if not best.exists():
        args = [*opts.prefix, "-c", ENTRY["run"], f"seed={seed}", f"hydra.run.dir={folder}"]
        call(args, Path(opts.out) / f"run_{seed}.log", opts.env, opts.tries, opts.wait_s)
    return best


def retrain(opts: argparse.Namespace, arch: str, seed: int, name: str) -> float:
    """Retrains `arch` (a string or a best_arch.json) with `seed` into `out/retrain_S/name`
    (unless done); returns its test accuracy in percent."""
    folder = Path(opts.out) / f"retrain_{seed}" / name
    result = folder / "retrain.json"
    if not result.exists():
        folder.parent.mkdir(parents=True, exist_ok=True)
        value = arch if arch.endswith(".json") else f"'{arch}'"
        args = [*opts.prefix, "-c", ENTRY["retrain"], f"arch={value}", f"seed={seed}"]
        args += [f"folds={opts.folds}"] if opts.folds > 1 else []
        args.append(f"hydra.run.dir={folder}")
        call(args, folder.parent / f"{name}.log", opts.env, opts.tries, opts.wait_s)
    return float(json.loads(result.read_text())["test_acc"])


def seed_row(seed: int, top1: str, top1_acc: float, rand: list[tuple[str, float]]) -> dict:
    """One seed's result: the top-1, its accuracy, the random archs', their median, and the call."""
    accs = [acc for _, acc in rand]
    median = statistics.median(accs)
    below = sum(acc < top1_acc for acc in accs) + 0.5 * sum(acc == top1_acc for acc in accs)
    return {
        "seed": seed,
        "top1": top1,
        "top1_acc": top1_acc,
        "random": [{"arch": arch, "acc": acc} for arch, acc in rand],
        "random_median": median,
        "beats_median": top1_acc > median,
        "random_below": below,  # random archs below the top-1, a tie counting half
    }


def summarize(rows: list[dict]) -> dict[str, Any]:
    """Means over seeds, how many seeds the top-1 beat the median, and how many random archs
    in all scored below it (a tie half): about half of them if the pick were a random arch."""
    top1 = statistics.fmean(r["top1_acc"] for r in rows)
    median = statistics.fmean(r["random_median"] for r in rows)
    return {
        "seeds": len(rows),
        "mean_top1_acc": top1,
        "mean_random_median": median,
        "mean_margin": top1 - median,
        "beats": sum(r["beats_median"] for r in rows),
        "random_below": sum(r["random_below"] for r in rows),
        "random_archs": sum(len(r["random"]) for r in rows),
    }


def escape(arch: str) -> str:
    """An arch string for a Markdown table cell (a bare `|` would split the cell)."""
    return arch.replace("|", "\\|")


def markdown(rows: list[dict], summary: dict[str, Any]) -> str:
    """The per-seed table and the mean row, in Markdown."""
    lines = [
        "| seed | top-1 of `make run` | top-1 test acc | random archs' test acc (sorted) "
        "| random median | top-1 > median | random archs below the top-1 |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        accs = ", ".join(f"{a:.2f}" for a in sorted(x["acc"] for x in r["random"]))
        tie = r["top1_acc"] == r["random_median"]
        beats = "yes" if r["beats_median"] else "no (tie)" if tie else "no"
        lines.append(
            f"| {r['seed']} | `{escape(r['top1'])}` | {r['top1_acc']:.2f} | {accs} "
            f"| {r['random_median']:.2f} | {beats} | {r['random_below']:g}/{len(r['random'])} |"
        )
    s = summary
    lines.append(
        f"| mean | | {s['mean_top1_acc']:.2f} | | {s['mean_random_median']:.2f} "
        f"| {s['beats']}/{s['seeds']} (margin {s['mean_margin']:+.2f}) "
        f"| {s['random_below']:g}/{s['random_archs']} |"
    )
    return "\n".join(lines) + "\n"


def commits(out: Path, seed: int) -> list[str]:
    """The git commits (as the entry points record them) of one seed's main job and retrains."""
    files = [out / f"run_{seed}" / "best_arch.json"]
    for pattern in ("*/train_run.json", "*/fold-*/train_run.json"):  # folds=K: one per fold
        files += sorted((out / f"retrain_{seed}").glob(pattern))
    return sorted({str(json.loads(f.read_text()).get("git")) for f in files if f.exists()})


def run_seed(opts: argparse.Namespace, seed: int) -> dict:
    """Steps 1-2 for one seed: the main job, its top-1 retrained, the random archs retrained."""
    print(f"seed {seed}: main job", flush=True)
    best = main_job(opts, seed)
    top1 = json.loads(best.read_text())["arch"]
    top1_acc = retrain(opts, str(best), seed, "top1")
    print(f"seed {seed}: top-1 {top1} -> {top1_acc:.2f}%", flush=True)
    rand = []
    for i, arch in enumerate(random_archs(seed, opts.num_random)):
        rand.append((arch, retrain(opts, arch, seed, f"random_{i:02d}")))
        print(f"seed {seed}: random {i} {arch} -> {rand[-1][1]:.2f}%", flush=True)
    return {**seed_row(seed, top1, top1_acc, rand), "commits": commits(Path(opts.out), seed)}


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--num-random", type=int, default=10)
    p.add_argument(
        "--folds",
        type=int,
        default=1,
        help="retrain with folds=K: K-fold cross-validation over every image (1: the test split)",
    )
    p.add_argument(
        "--out", default="outputs/benchmark_pick", help="relative to the current folder"
    )
    p.add_argument("--python", default=sys.executable)
    p.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS of each run (0: unset)")
    p.add_argument("--no-nice", action="store_true")
    p.add_argument("--tries", type=int, default=3)
    p.add_argument("--wait-s", type=float, default=60.0)
    opts = p.parse_args(argv)
    if opts.folds < 1:
        p.error(f"--folds {opts.folds}: expected 1 (the test split) or more")
    opts.prefix = ([] if opts.no_nice else ["nice"]) + [opts.python]
    opts.env = dict(os.environ)
    if opts.threads:
        opts.env["OMP_NUM_THREADS"] = str(opts.threads)
    return opts


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Every seed's runs, then the table; writes `benchmark_pick.json` and `.md` in `--out`."""
    opts = parse(argv)
    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = [run_seed(opts, seed) for seed in opts.seeds]
    summary = summarize(rows)
    table = markdown(rows, summary)
    results = {"rng": f"random.Random({RNG_OFFSET} + seed)", "rows": rows, "summary": summary}
    config = {k: v for k, v in vars(opts).items() if k not in ("env", "prefix")}
    report = write_report(
        out / "benchmark_pick.json", results, config, table, out / "benchmark_pick.md"
    )
    print(table)
    return report


if __name__ == "__main__":
    main()

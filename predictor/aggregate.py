"""One summary of a multirun (`-m seed=0,1,2`): mean ± std of each numeric metric, per stage, over
the sweep's jobs, written as `multirun_summary.json` and `.md` at the sweep's root.

`MultirunSummary` is a Hydra callback (conf/hydra/default.yaml registers it); the functions below
it read plain folders, so a summary can also be rebuilt by hand: `write_summary(sweep_dir)`.

What each job's folder holds, per stage (every file optional):
- train: the last logged value of each column of Lightning's `metrics.csv` (`csv/metrics.csv`),
  `epoch` and `step` left out;
- evaluate: `subnets/num`, `subnets/acc_mean` and `subnets/acc_max` of the CSV that
  `evaluate_run.json` names;
- fit: the numbers of `fit.json`'s `metrics`;
- any other `<stage>_run.json` (query, search, export...): its top-level numbers, and those of
  its first `top` row as `best/<key>` (query's best arch: score, flops_M, params_M).

Under a hyper-parameter search (conf/hparams_search/, or any multirun with `optimized_metric=`),
the summary also lists each job's value of that metric and, with the sweeper's `direction`, the
best job: the trials side by side, which a mean ± std over them does not show.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import statistics
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from predictor.summary import read_last_metrics

log = logging.getLogger(__name__)

SUMMARY_JSON = "multirun_summary.json"
SUMMARY_MD = "multirun_summary.md"
NOT_METRICS = {"epoch", "step"}  # Lightning's counters: the same in every job
ORDER = ("train", "evaluate", "zeroshot", "fit", "query", "search", "export")  # the pipeline's


class MultirunSummary(Callback):
    """Writes the sweep's summary once every job has returned (Hydra's `on_multirun_end`, run
    where the sweep was launched). A summary that cannot be written is a warning: the jobs'
    own outputs are complete either way."""

    def __init__(self) -> None:
        self.root: Path | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        # resolved once, as the launcher resolves it: `${now:...}` must not move on
        self.root = Path(str(config.hydra.sweep.dir))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        root = self.root or Path(str(config.hydra.sweep.dir))
        direction = OmegaConf.select(config, "hydra.sweeper.direction", default=None)
        try:
            summary = write_summary(
                root,
                config.get("optimized_metric"),
                direction if isinstance(direction, str) else None,
            )
        except OSError as err:
            log.warning("no multirun summary in %s: %s", root, err)
            return
        if summary["stages"]:
            log.info("multirun summary of %d jobs: %s", len(summary["jobs"]), root / SUMMARY_MD)


def write_summary(
    root: str | Path, metric: str | None = None, direction: str | None = None
) -> dict[str, Any]:
    """Summarises the jobs under the sweep folder `root` into `root/multirun_summary.{json,md}`.
    No job with metrics: nothing is written.

    Args:
        metric: the sweep's `optimized_metric` (e.g. `val/acc`), listed per job; None: not.
        direction: the sweeper's `maximize` or `minimize`, which names the best job.

    Returns:
        `jobs` (folder and overrides of each), `stages`: stage -> metric -> `mean`, `std`
        (the sample standard deviation, 0 for one value), `n` and the jobs' `values`; with
        `metric`, `objective` too (`objective_summary`).
    """
    root = Path(root)
    jobs = job_folders(root)
    per_job = {job: job_metrics(job) for job in jobs}
    summary: dict[str, Any] = {
        "sweep_dir": str(root),
        "jobs": [{"dir": job.name, "overrides": read_overrides(job)} for job in jobs],
        "stages": summarise([per_job[job] for job in jobs]),
    }
    if metric:
        summary["objective"] = objective_summary(
            {job.name: per_job[job] for job in jobs}, metric, direction
        )
    if not summary["stages"]:
        log.warning("multirun summary: no job under %s wrote metrics", root)
        return summary
    (root / SUMMARY_JSON).write_text(json.dumps(summary, indent=2) + "\n")
    (root / SUMMARY_MD).write_text(summary_markdown(summary))
    return summary


def objective_summary(
    per_job: Mapping[str, Mapping[str, Mapping[str, float]]],
    metric: str,
    direction: str | None,
) -> dict[str, Any]:
    """Each job's value of `metric` (from whichever stage logged it; None where none did, e.g. a
    NaN, which is a failed trial) and, with `direction` maximize or minimize, the best job."""
    values: dict[str, float | None] = {}
    for job, stages in per_job.items():
        found = [m[metric] for m in stages.values() if metric in m]
        values[job] = found[0] if found else None
    have = {job: v for job, v in values.items() if v is not None}
    best = None
    if have and direction in ("maximize", "minimize"):
        pick = max if direction == "maximize" else min
        best = pick(have, key=lambda job: have[job])
    return {"metric": metric, "direction": direction, "values": values, "best": best}


def job_folders(root: Path) -> list[Path]:
    """The job folders of a sweep: those holding Hydra's `.hydra/` record (any depth, for a
    custom `hydra.sweep.subdir`), else the immediate subfolders; numeric names in numeric order."""
    found = {p.parent.parent for p in root.rglob(".hydra/overrides.yaml")}
    if not found:
        found = {p for p in root.iterdir() if p.is_dir()} if root.is_dir() else set()
    found.discard(root)
    return sorted(found, key=lambda p: (len(p.name) if p.name.isdigit() else math.inf, str(p)))


def read_overrides(job: Path) -> list[str]:
    """The job's command-line overrides (`.hydra/overrides.yaml`); none recorded: empty."""
    path = job / ".hydra" / "overrides.yaml"
    return [str(o) for o in yaml.safe_load(path.read_text()) or []] if path.is_file() else []


def job_metrics(job: Path) -> dict[str, dict[str, float]]:
    """Every stage's numeric metrics found in one job's folder (see the module's docstring)."""
    stages: dict[str, dict[str, float]] = {}
    for path in sorted(job.rglob("metrics.csv")):
        stages.setdefault("train", {}).update(last_logged(path))
    for path in sorted(job.rglob("fit.json")):
        record = read_json(path)
        stages.setdefault("fit", {}).update(numbers(record.get("metrics") or {}))
    for path in sorted(job.rglob("*_run.json")):
        stage = path.name.removesuffix("_run.json")
        found = run_record_metrics(stage, read_json(path), path.parent)
        if found:
            stages.setdefault(stage, {}).update(found)
    return stages


def run_record_metrics(stage: str, record: Mapping[str, Any], folder: Path) -> dict[str, float]:
    """The metrics of a `<stage>_run.json`: evaluate's come from the subnets CSV it names, the
    others' from its own top-level numbers and first `top` row."""
    if stage == "evaluate":
        out = (record.get("config") or {}).get("out")
        return subnet_accuracies(Path(out) if out else folder / "subnets.csv")
    skip = {"config", "git", "stage"}
    found = numbers({k: v for k, v in record.items() if k not in skip})
    top = record.get("top")
    if isinstance(top, list) and top and isinstance(top[0], Mapping):
        found.update({f"best/{k}": v for k, v in numbers(top[0]).items()})
    return found


def subnet_accuracies(path: Path) -> dict[str, float]:
    """Count, mean and best `acc` of an evaluate CSV (one row per subnet); missing: empty."""
    if not path.is_file():
        return {}
    with open(path, newline="") as f:
        acc = [float(row["acc"]) for row in csv.DictReader(f) if row.get("acc")]
    if not acc:
        return {}
    return {
        "subnets/num": len(acc),
        "subnets/acc_mean": statistics.fmean(acc),
        "subnets/acc_max": max(acc),
    }


def last_logged(path: Path) -> dict[str, float]:
    """The last logged value of each column of a Lightning `metrics.csv`, counters left out."""
    return {k: v for k, v in read_last_metrics(path).items() if k not in NOT_METRICS}


def numbers(record: Mapping[str, Any]) -> dict[str, float]:
    """The finite int and float values of `record` (booleans, NaN and the rest left out)."""
    return {
        str(k): float(v)
        for k, v in record.items()
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    }


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from `path`; unreadable or not an object: empty, with a warning."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        log.warning("multirun summary: skipping %s (%s)", path, err)
        return {}
    return data if isinstance(data, dict) else {}


def summarise(jobs: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, dict[str, Any]]]:
    """Stage -> metric -> mean, std (sample, n - 1; 0 for one value), n and values over `jobs`
    (each job's stage -> metric -> value); a metric counts the jobs that have it."""
    values: dict[str, dict[str, list[float]]] = {}
    for job in jobs:
        for stage, metrics in job.items():
            for name, value in metrics.items():
                values.setdefault(stage, {}).setdefault(name, []).append(value)
    return {
        stage: {
            name: {
                "mean": statistics.fmean(vals),
                "std": statistics.stdev(vals) if len(vals) > 1 else 0.0,
                "n": len(vals),
                "values": vals,
            }
            for name, vals in sorted(metrics.items())
        }
        for stage, metrics in sorted(values.items(), key=lambda kv: stage_order(kv[0]))
    }


def stage_order(stage: str) -> tuple[int, str]:
    """Sorts stages in the pipeline's order, any other after them by name."""
    return (ORDER.index(stage) if stage in ORDER else len(ORDER), stage)


def summary_markdown(summary: Mapping[str, Any]) -> str:
    """The summary as Markdown: the jobs and their overrides, each job's value of the objective
    (under a search), then one table per stage."""
    lines = [f"# Multirun summary: {len(summary['jobs'])} jobs", ""]
    lines += [
        f"- `{j['dir']}`: {' '.join(j['overrides']) or '(no overrides)'}" for j in summary["jobs"]
    ]
    lines.append("")
    objective = summary.get("objective")
    if objective:
        direction = f" ({objective['direction']})" if objective["direction"] else ""
        lines += [f"## objective: {objective['metric']}{direction}", ""]
        lines += ["| job | value |", "|---|---|"]
        for job, value in objective["values"].items():
            shown = "none (failed)" if value is None else f"{value:.4g}"
            lines.append(f"| `{job}`{' (best)' if job == objective['best'] else ''} | {shown} |")
        lines.append("")
    lines += ["Mean ± std (sample standard deviation) over the jobs that logged each metric.", ""]
    for stage, metrics in summary["stages"].items():
        lines += [f"## {stage}", "", "| metric | mean ± std | n |", "|---|---|---|"]
        lines += [
            f"| {name} | {m['mean']:.4g} ± {m['std']:.2g} | {m['n']} |"
            for name, m in metrics.items()
        ]
        lines.append("")
    return "\n".join(lines)

"""What every benchmark shares: the one reader of a ground-truth CSV, the ranking metrics scored
against it, and the one report writer (results + where and when they were measured).

Only benchmarks read a truth; no stage of the pipeline does. Truths are inputs the user brings
(e.g. NAS-Bench-201's `arch,cifar10_test` CSV): a benchmark given none, or a path that does not
exist, skips with a message naming it.
"""

from __future__ import annotations

import csv
import datetime
import functools
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.stats import kendalltau, spearmanr

from supernet.space import SearchSpace
from supernet.utils import atomic_write_json, atomic_write_text, git_hash

TOP_FRACTION = 0.1  # "within the true top 10%"


def missing(what: str, path: str | Path | None) -> str | None:
    """The skip message of a benchmark input that is not given (None) or not a file; None if it is."""
    if path is None:
        return f"skipped: no {what} given (pass {what}=PATH)"
    if not Path(path).is_file():
        return f"skipped: {what} {path} not found"
    return None


def skipped(reason: str | None) -> dict[str, str] | None:
    """`{"skipped": reason}`, the result of a benchmark that cannot run, after printing the reason;
    None when there is no reason."""
    if reason is None:
        return None
    print(reason)
    return {"skipped": reason}


def read_column(
    path: str | Path, column: str, space: SearchSpace | None = None
) -> dict[str, float]:
    """arch -> float(column) of a CSV with an `arch` column (a truth, or a stage's result file).

    With `space`, arch strings are parsed and written back canonically, so a truth joins with any
    file of the same archs however its strings were spelled.

    Raises:
        ValueError: the file has no `arch` or no `column` column.
    """
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if not {"arch", column} <= set(reader.fieldnames or ()):
            raise ValueError(
                f"{path}: expected columns 'arch' and {column!r}, got {reader.fieldnames}"
            )
        rows = [(row["arch"], float(row[column])) for row in reader]
    if space is None:
        return dict(rows)
    return {space.to_str(space.parse(arch)): value for arch, value in rows}


def read_truth(path: str | Path, space: SearchSpace, column: str) -> np.ndarray:
    """Ground truth of every arch in canonical index order, joined on the arch string.

    Raises:
        ValueError: some arch of the space has no value.

    Shapes:
        `(space.size,)`.
    """
    truth = np.full(space.size, np.nan)
    for arch, value in read_column(path, column, space).items():
        truth[space.index(space.parse(arch))] = value
    if np.isnan(truth).any():
        raise ValueError(f"{path}: {int(np.isnan(truth).sum())} archs have no {column!r} value")
    return truth


# what `rank_metrics` returns, in report order
RANK_METRICS = ("kendall", "spearman", "kendall_classes", "kendall_top10", "top1", "top10")


def rank_metrics(score: np.ndarray, truth: np.ndarray, classes: np.ndarray) -> dict[str, float]:
    """How well `score` ranks the space against `truth`.

    Returns:
        kendall / spearman over every arch; kendall_classes over one row per class (the class's
        mean score and truth); kendall_top10 within the true top 10%; top1 / top10 the true
        accuracy of the best-scored arch and the mean of the 10 best-scored classes' best members.

    Shapes:
        score, truth, classes `(space.size,)`.
    """
    _, inverse = np.unique(classes, return_inverse=True)
    counts = np.bincount(inverse)
    class_score = np.bincount(inverse, score) / counts
    class_truth = np.bincount(inverse, truth) / counts
    top = truth >= np.quantile(truth, 1.0 - TOP_FRACTION)
    order = np.argsort(-score, kind="stable")
    seen, best = set(), []
    for i in order:  # the 10 best-scored classes, each by its best-scored member
        if inverse[i] not in seen:
            seen.add(inverse[i])
            best.append(truth[i])
            if len(best) == 10:
                break
    return {
        "kendall": float(kendalltau(score, truth)[0]),
        "spearman": float(spearmanr(score, truth)[0]),
        "kendall_classes": float(kendalltau(class_score, class_truth)[0]),
        "kendall_top10": float(kendalltau(score[top], truth[top])[0]),
        "top1": float(truth[order[0]]),
        "top10": float(np.mean(best)),
    }


@functools.cache
def cpu_model() -> str:
    """The CPU's model name (lscpu), for the record of where a figure was measured."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            if line.startswith("Model name"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return platform.processor() or "unknown"


def device_name(device: torch.device | str = "cpu") -> str:
    """The accelerator's name (e.g. "NVIDIA H200"), or "cpu"."""
    device = torch.device(device)
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def run_info(device: torch.device | str = "cpu") -> dict[str, Any]:
    """Where and when a figure was measured: date, commit, device and CPU, torch threads, the load
    average (a busy machine slows every timing) and the command line."""
    return {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "git": git_hash(),
        "device": device_name(device),
        "cpu": cpu_model(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "load_average": list(os.getloadavg()),
        "command": " ".join(sys.argv),
    }


def write_report(
    json_path: str | Path,
    results: dict[str, Any],
    config: dict[str, Any],
    markdown: str | None = None,
    md_path: str | Path | None = None,
    device: torch.device | str = "cpu",
) -> dict[str, Any]:
    """Writes a benchmark's results with `run_info(device)` and the resolved `config` as JSON (and
    `markdown` to `md_path` when given), each atomically; returns the record written."""
    record = {**results, **run_info(device), "config": config}
    atomic_write_json(json_path, record)
    if markdown is not None and md_path is not None:
        atomic_write_text(md_path, markdown if markdown.endswith("\n") else markdown + "\n")
    return record


def mean_table(
    head: tuple[str, ...], rows: list[tuple[list[str], dict[str, Any]]], metrics: tuple[str, ...]
) -> str:
    """A Markdown table: the `head` columns then one `mean ± std` cell per metric; each row is its
    leading cells and metric -> (mean, std, ...) (a missing metric is an empty cell)."""
    lines = [
        "| " + " | ".join((*head, *metrics)) + " |",
        "|" + "---|" * (len(head) + len(metrics)),
    ]
    for cells, m in rows:
        values = [f"{m[k][0]:.3f} ± {m[k][1]:.3f}" if k in m else "" for k in metrics]
        lines.append("| " + " | ".join((*cells, *values)) + " |")
    return "\n".join(lines) + "\n"

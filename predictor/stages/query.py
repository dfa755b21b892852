"""Best archs of a lookup table under budgets: a rich table, the Pareto front (score vs FLOPs) as a
PNG, and the best arch exported as JSON and YAML.

With `dedup=true` (the default) the top shows one row per isomorphism class (archs that differ only
on dead edges included), its cheapest member, with the class size and whether a convolution lies on
a live input-to-output path (`predictor/topk.py`).

    python scripts/query.py table=table.csv top_k=10 max_flops_M=50 max_params_M=0.5
    python scripts/query.py table=zeroshot.csv score_column=wrcor
"""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

import hydra
import numpy as np
from omegaconf import DictConfig, OmegaConf

from predictor.io import DataError, atomic_savefig, read_table
from predictor.table import TABLE_COLUMNS
from predictor.topk import dedup_classes, live_conv
from supernet.artefact import arch_record, write_arch_record
from supernet.utils import check_count, write_run_info

log = logging.getLogger(__name__)

BUDGETS = {"max_flops_M": "flops_M", "max_params_M": "params_M", "max_latency_ms": "latency_ms"}


class BudgetError(DataError):
    """No arch of the table meets the budgets; the message says which and what is available (bad
    input: exit code 2 like any other)."""


def pareto_front(score: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """Indices of the archs no other arch beats on both (higher score, lower cost), by cost.

    Shapes:
        score `(n,)`, cost `(n,)` -> `(k,)`.
    """
    order = np.lexsort((-score, cost))  # by cost, then best score first
    front, best = [], -np.inf
    for i in order:
        if score[i] > best:
            front.append(i)
            best = score[i]
    return np.array(front, dtype=np.int64)


def plot_pareto(
    path: str | Path,
    score: np.ndarray,
    costs: dict[str, np.ndarray],
    best: int,
    score_column: str,
    budgets: dict[str, float],
    title: str,
) -> Path:
    """One panel per cost column (`flops_M`, `params_M`): every arch, the Pareto front (drawn
    large and on top, so a one-point front shows), the chosen arch and the budget on that cost."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    limits = {col: budgets[key] for key, col in BUDGETS.items() if key in budgets}
    fig, axes = plt.subplots(1, len(costs), figsize=(5 * len(costs), 4.5), squeeze=False)
    for ax, (col, cost) in zip(axes[0], costs.items()):
        front = pareto_front(score, cost)
        ax.scatter(cost, score, s=3, alpha=0.25, color="grey", label="all archs")
        ax.plot(cost[front], score[front], "-", color="C0", lw=1, zorder=3)
        label = f"Pareto front ({len(front)})"
        ax.scatter(cost[front], score[front], s=25, c="C0", ec="k", lw=0.5, zorder=4, label=label)
        ax.scatter(
            cost[best], score[best], s=140, marker="*", color="C3", zorder=5, label="chosen"
        )
        if col in limits:
            ax.axvline(limits[col], color="C3", ls="--", lw=0.8, label=f"budget {limits[col]:g}")
        ax.set_xlabel(col.replace("_M", " (M)"))
        ax.set_ylabel(score_column)
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    try:
        return atomic_savefig(fig, path)
    finally:
        plt.close(fig)


def check_budget(key: str, value: object) -> float:
    """A budget as a finite number; else a DataError naming it."""
    try:
        limit = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        limit = float("nan")
    if not np.isfinite(limit) or isinstance(value, bool):
        raise DataError(f"{key}={value!r}: expected a finite number (or null: no budget)")
    return limit


def run(cfg: DictConfig) -> dict:
    """Filters the table by every budget and exports the best arch.

    Returns:
        `top` (rows meeting the budgets, best first, at most `top_k`), `best`, `front` and paths.

    Raises:
        BudgetError: when no arch meets the budgets.
    """
    check_count("top_k", cfg.top_k, 1, "how many of the best archs to show")
    space = hydra.utils.instantiate(cfg.space)
    sc = str(cfg.score_column)
    header, cols = read_table(cfg.table, sc, numeric=list(BUDGETS.values()))
    n = len(cols["arch"])
    if header[: len(TABLE_COLUMNS)] == list(TABLE_COLUMNS) and n != space.size:
        raise DataError(
            f"{cfg.table}: a table of scripts/fit.py has one row per arch of the space, "
            f"{space.size}; this one has {n} (cut off, or made for another space): write it again"
        )
    archs = []
    for i, s in enumerate(cols["arch"]):
        try:
            archs.append(space.parse(s))
        except ValueError as err:
            raise DataError(f"{cfg.table}:{i + 2}: bad arch {s!r}: {err}") from None
    for col in ("flops_M", "params_M"):  # a table without costs (e.g. zero-shot): from the space
        if col not in cols:
            costs = [space.cost(a, tuple(cfg.input_shape), int(cfg.num_classes)) for a in archs]
            cols[col] = np.array([getattr(c, col) for c in costs])
    score = cols[sc] if cfg.higher_is_better else -cols[sc]

    ok = np.ones(n, dtype=bool)
    budgets = {}
    for key, col in BUDGETS.items():
        limit = cfg.get(key)
        if limit is None:
            continue
        if col not in cols:
            raise DataError(
                f"{cfg.table}:1: {key}={limit} needs a {col!r} column; header is {header}"
            )
        budgets[key] = check_budget(key, limit)
        ok &= cols[col] <= budgets[key]
    if not ok.any():
        lines = [
            f"{k}={v:g}: smallest {BUDGETS[k]} in the table is {cols[BUDGETS[k]].min():g}"
            + (" (nothing meets it)" if (cols[BUDGETS[k]] > v).all() else "")
            for k, v in budgets.items()
        ]
        raise BudgetError(f"no arch in {cfg.table} meets every budget:\n  " + "\n  ".join(lines))

    flops, params = cols["flops_M"], cols["params_M"]
    if cfg.get("dedup", True):
        classes = dedup_classes(space, archs, score, flops, params, ok, int(cfg.top_k))
        # a class ranks at its best member's score and is shown by its cheapest member
        shown = [(c.index, c.best, {"class_size": c.size, "dead_ops": c.dead}) for c in classes]
    else:
        idx = np.flatnonzero(ok)
        idx = idx[np.argsort(-score[idx], kind="stable")][: int(cfg.top_k)]
        shown = [(int(i), int(i), {}) for i in idx]
    best = shown[0][0]

    def row(i: int, ranked_by: int, extra: dict) -> dict:
        r = {
            "arch": str(cols["arch"][i]),
            sc: float(cols[sc][ranked_by]),
            "flops_M": float(flops[i]),
            "params_M": float(params[i]),
        }
        if "latency_ms" in cols:
            r["latency_ms"] = float(cols["latency_ms"][i])
        return {**r, **extra, "live_conv": live_conv(space, archs[i])}

    top = [row(*t) for t in shown]
    front = pareto_front(score, flops)
    within = ", ".join(f"{k}={v:g}" for k, v in budgets.items()) or "no budget"
    plot_pareto(
        cfg.pareto_plot,
        cols[sc],
        {"flops_M": flops, "params_M": params},
        best,
        sc,
        budgets,
        f"{Path(str(cfg.table)).name}: {n} archs, {int(ok.sum())} within budget ({within})\n"
        f"chosen: {cols['arch'][best]}",
    )
    data = cfg.get("data") or {}
    export = arch_record(
        space,
        archs[best],
        {
            "name": data.get("name"),
            "input_shape": list(cfg.input_shape),
            "num_classes": int(cfg.num_classes),
        },
        **top[0],
        score_column=sc,
        budgets=budgets,
        table=str(cfg.table),
    )
    write_arch_record(cfg.export_json, export, cfg.export_yaml)
    write_run_info(
        Path(cfg.export_json).parent,
        "query",
        OmegaConf.to_container(cfg, resolve=True),
        top=top,
        num_meeting=int(ok.sum()),
    )
    return {
        "top": top,
        "best": export,
        "front": [str(cols["arch"][i]) for i in front],
        "num_meeting": int(ok.sum()),
        "pareto_plot": str(cfg.pareto_plot),
        "export_json": str(cfg.export_json),
        "export_yaml": str(cfg.export_yaml),
    }


def format_top(out: dict, width: int = 200) -> str:
    """The top rows as a plain-text table (for the screen and the log file alike); `dead_ops` only
    when some row has one (a table that lacks an arch's pruned form)."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    title = f"best {len(out['top'])} of {out['num_meeting']} archs within budget"
    table = Table(title=title, box=box.SIMPLE_HEAD)
    keys = [k for k in out["top"][0] if k != "dead_ops" or any(r[k] for r in out["top"])]
    table.add_column("#", justify="right")
    for k in keys:
        table.add_column(k, justify="left" if k == "arch" else "right", overflow="fold")
    for i, r in enumerate(out["top"], 1):
        table.add_row(
            str(i), *[f"{r[k]:.4g}" if isinstance(r[k], float) else str(r[k]) for k in keys]
        )
    console = Console(file=io.StringIO(), width=width, color_system=None)
    console.print(table)
    return "\n".join(line.rstrip() for line in console.file.getvalue().strip("\n").splitlines())


def print_top(out: dict, score_column: str) -> None:
    """Logs the top table (Hydra's console and `<task>.log`) and where the outputs went."""
    log.info("%s: top archs\n%s", score_column, format_top(out))
    log.info(
        f"best arch -> {out['export_json']}, {out['export_yaml']}; Pareto front -> "
        f"{out['pareto_plot']}"
    )


def report(cfg: DictConfig, out: dict[str, Any]) -> None:
    print_top(out, str(cfg.score_column))

"""Best archs of a lookup table under budgets: a rich table, the Pareto front (score vs FLOPs) as a
PNG, and the best arch exported as JSON and YAML.

With `dedup=true` (the default) the top shows one row per isomorphism class (archs that differ only
on dead edges included), its cheapest member, with the class size and whether a convolution lies on
a live input-to-output path (`predictor/topk.py`).

The stage reads the config and the table and writes the outputs; the rows (`predictor.scored`),
budgets (`predictor.budgets`), the choice (`predictor.shortlist`) and the plot (`predictor.plots`)
are library code. `answer` also shows what a search found, handed over in memory.

    python scripts/query.py table=table.csv top_k=10 max_flops_M=50 max_params_M=0.5
    python scripts/query.py table=zeroshot.csv score_column=wrcor
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from predictor.budgets import BudgetError, read_budgets  # noqa: F401  (query.BudgetError)
from predictor.io import FIT_RECORD, TABLE_COLUMNS, check_fit_record, read_fit_record
from predictor.plots import plot_pareto
from predictor.scored import Scored, read_scored
from predictor.shortlist import Shortlist, shortlist
from supernet.artefact import (
    arch_record,
    choose_space,
    record_space,
    space_overrides,
    write_arch_record,
)
from supernet.space import SearchSpace
from supernet.stages import command_line
from supernet.utils import check_count, write_run_info

log = logging.getLogger(__name__)


def run(cfg: DictConfig, overrides: Sequence[str] | None = None) -> dict:
    """Filters the table by every budget and exports the best arch. A table of nas-fit is read in
    the space its `fit.json` records, so `space=` is not needed twice (an explicit, different one
    is refused, both named).

    Args:
        overrides: the command line, to tell an explicit `space=` (default: Hydra's).

    Returns:
        `answer`'s result: `top` (rows meeting the budgets, best first, at most `top_k`), `best`,
        `front` and paths.

    Raises:
        BudgetError: when no arch meets the budgets.
    """
    check_count("top_k", cfg.top_k, 1, "how many of the best archs to show")
    overrides = command_line() if overrides is None else overrides
    record = read_fit_record(cfg.table)
    space = table_space(record, cfg.table, hydra.utils.instantiate(cfg.space), overrides)
    shape, num_classes = tuple(cfg.input_shape), int(cfg.num_classes)
    sc, higher = str(cfg.score_column), bool(cfg.higher_is_better)
    scored = read_scored(str(cfg.table), space, sc, higher, shape, num_classes)
    if scored.header[: len(TABLE_COLUMNS)] == list(TABLE_COLUMNS):  # a lookup table of nas-fit
        check_fit_record(cfg.table, record, "table", bool(cfg.get("require_record", True)))
    return answer(cfg, space, scored)


def table_space(
    record: dict[str, Any] | None, table: str, configured: SearchSpace, overrides: Sequence[str]
) -> SearchSpace:
    """The space the `fit.json` beside `table` (`record`) names, else the configured one."""
    if record is None:
        return configured
    source = str(Path(table).parent / FIT_RECORD)
    return choose_space(
        record_space(record, source), configured, space_overrides(overrides), source
    )


def answer(cfg: DictConfig, space: SearchSpace, scored: Scored) -> dict:
    """Shows, plots and exports the best of `scored` within the budgets of `cfg`: the Pareto
    plot, the best arch as JSON and YAML, and `query_run.json` beside them.

    Returns:
        `top`, `best` (the exported record), `front` (arch strings), `num_meeting` and paths.
    """
    budgets = read_budgets(cfg)
    picked = shortlist(space, scored, budgets, int(cfg.top_k), bool(cfg.get("dedup", True)))
    costs = {c: scored.costs[c] for c in ("flops_M", "params_M")}
    title = pareto_title(scored, picked, budgets)
    plot_pareto(
        cfg.pareto_plot, scored.score, costs, picked.best, scored.score_column, budgets, title
    )
    export = best_record(cfg, space, scored, picked, budgets)
    write_arch_record(cfg.export_json, export, cfg.export_yaml)
    meeting = int(picked.within.sum())
    config = OmegaConf.to_container(cfg, resolve=True)
    write_run_info(
        Path(cfg.export_json).parent, "query", config, top=picked.top, num_meeting=meeting
    )
    return {
        "top": picked.top,
        "best": export,
        "front": [scored.archs.string(i) for i in picked.front],
        "num_meeting": meeting,
        "pareto_plot": str(cfg.pareto_plot),
        "export_json": str(cfg.export_json),
        "export_yaml": str(cfg.export_yaml),
    }


def best_record(
    cfg: DictConfig, space: SearchSpace, scored: Scored, picked: Shortlist, budgets: dict
) -> dict[str, Any]:
    """The answer's self-describing record (`arch_record`): its top row, the score column, the
    budgets, the table, and the data its costs are for."""
    data = cfg.get("data") or {}
    return arch_record(
        space,
        scored.archs[picked.best],
        {
            "name": data.get("name"),
            "input_shape": list(cfg.input_shape),
            "num_classes": int(cfg.num_classes),
        },
        **picked.top[0],
        score_column=scored.score_column,
        budgets=budgets,
        table=scored.source,
    )


def pareto_title(scored: Scored, picked: Shortlist, budgets: dict[str, float]) -> str:
    """The Pareto plot's title: the table, how many archs meet which budgets, the chosen one."""
    within = ", ".join(f"{k}={v:g}" for k, v in budgets.items()) or "no budget"
    return (
        f"{Path(scored.source).name}: {len(scored.archs)} archs, {int(picked.within.sum())} "
        f"within budget ({within})\nchosen: {scored.archs.string(picked.best)}"
    )


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

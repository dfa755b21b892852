"""Evolutionary search of a space too large to tabulate (the 20-layer chain), scored by the fitted
predictor, under FLOPs / params / latency budgets: every arch scored as a CSV, best first, and the
best ones as query.py shows them (a table, the Pareto front, the best arch as JSON and YAML).

    python scripts/search.py space=chain checkpoint=predictor.ckpt max_flops_M=50
    python scripts/search.py space=chain checkpoint=predictor.ckpt latency_table=latency.json \
        max_latency_ms=5 generations=100 population=128 parents=32
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import hydra
import torch
from omegaconf import DictConfig, OmegaConf, open_dict

from predictor.io import DataError, atomic_write_csv, atomic_write_json, git_hash
from predictor.module import GCNPredictor, RidgePredictor
from predictor.search import EvolutionSearch, NoArchFits
from predictor.stages import query
from predictor.table import load_checkpoint, read_checkpoint
from supernet.latency import LatencyTable
from supernet.space import Arch, SearchSpace
from supernet.utils import check_count

COLUMNS = ("rank", "arch", "score", "flops_M", "params_M")


class LatencyBudget:
    """`arch -> latency_ms <= max_ms` by a latency table; remembers the smallest latency seen, for
    the search's no-arch-fits error."""

    def __init__(self, space: SearchSpace, table: LatencyTable, max_ms: float) -> None:
        self.space, self.table, self.max_ms = space, table, max_ms
        self.smallest = float("inf")

    def __call__(self, arch: Arch) -> bool:
        ms = self.table.arch_ms(self.space, arch)
        self.smallest = min(self.smallest, ms)
        return ms <= self.max_ms

    def __repr__(self) -> str:
        return f"max_latency_ms={self.max_ms:g} (smallest seen {self.smallest:.4g} ms)"


def load_latency(cfg: DictConfig, space: SearchSpace) -> LatencyTable | None:
    """The latency table of `latency_table=FILE`, checked against the space (None without one)."""
    if not cfg.latency_table:
        if cfg.max_latency_ms is not None:
            raise DataError(
                f"max_latency_ms={cfg.max_latency_ms} needs latency_table=FILE "
                "(a JSON from scripts/latency.py)"
            )
        return None
    try:
        table = LatencyTable.load(cfg.latency_table)
    except (FileNotFoundError, TypeError, ValueError) as err:
        raise DataError(f"{cfg.latency_table}: not a latency table: {err}") from None
    if table.space != space.name or len(table.op_ms) != space.num_decisions:
        raise DataError(
            f"{cfg.latency_table}: latency table of space {table.space!r} with "
            f"{len(table.op_ms)} layers; this space is {space.name!r} with "
            f"{space.num_decisions}"
        )
    if list(table.input_shape) != list(cfg.input_shape):
        raise DataError(
            f"{cfg.latency_table}: measured for input shape {list(table.input_shape)}; this run's "
            f"input_shape is {list(cfg.input_shape)}"
        )
    return table


def load_predictor(
    cfg: DictConfig, space: SearchSpace
) -> tuple[GCNPredictor | RidgePredictor, dict]:
    """The fitted predictor and its checkpoint, refused when fitted on another layout."""
    path = Path(cfg.checkpoint)
    if not path.is_file():
        raise DataError(f"{path}: no such file (a predictor.ckpt from scripts/fit.py)")
    # the layout first: another one fails to load with a shape error, or, where the shapes agree
    # (a path-graph GCN scores chains of any length), loads and scores the wrong layers. The
    # space is rebuilt from its registered name and plain arguments, never from a class path
    # stored in the file; the file loads with weights_only=True
    _, fitted_on = read_checkpoint(path)
    if (fitted_on.name, fitted_on.config()) != (space.name, space.config()):
        raise DataError(
            f"{path}: fitted on space {fitted_on.name} {fitted_on.config()}; this run's space is "
            f"{space.name} {space.config()} (pass the fit's space=...)"
        )
    return load_checkpoint(path, space)


def run(cfg: DictConfig) -> dict:
    """Searches, writes `out` (every arch scored, best first) and shows / exports the best ones
    through query.py's `run` on that file.

    Returns:
        query.py's result (`top`, `best`, `front`, paths) plus `out`, `metrics` and `results`
        (every (arch, score) scored, best first).

    Raises:
        DataError: a missing or mismatched checkpoint or latency table.
        query.BudgetError: when no arch meets the budgets.
    """
    start = time.perf_counter()
    for key, least in (("population", 2), ("parents", 1), ("generations", 0), ("top_k", 1)):
        check_count(key, cfg[key], least)
    for key in ("max_flops_M", "max_params_M", "max_latency_ms"):
        if cfg.get(key) is not None:
            query.check_budget(key, cfg[key])
    space = hydra.utils.instantiate(cfg.space)
    predictor, ckpt = load_predictor(cfg, space)
    latency = load_latency(cfg, space)
    u_all = ckpt.get("u")  # features of every arch: only a listable space has them

    def score(archs: list[Arch]) -> list[float]:
        u = None if u_all is None else u_all[torch.tensor([space.index(a) for a in archs])]
        ops = torch.tensor(archs, dtype=torch.long)
        return predictor.predict(ops, u, batch_size=int(cfg.predict_batch_size)).tolist()

    shape, num_classes = tuple(cfg.input_shape), int(cfg.num_classes)
    latency_budget = None
    if cfg.max_latency_ms is not None:
        latency_budget = LatencyBudget(space, latency, float(cfg.max_latency_ms))
    search = EvolutionSearch(
        space,
        score,
        population_size=int(cfg.population),
        parents=int(cfg.parents),
        mutate_prob=float(cfg.mutate_prob),
        crossover_fraction=float(cfg.crossover_fraction),
        max_flops_M=cfg.max_flops_M,
        max_params_M=cfg.max_params_M,
        constraint=latency_budget,
        input_shape=shape,
        num_classes=num_classes,
        seed=int(cfg.seed),
    )
    try:
        results = search.run(int(cfg.generations))
    except NoArchFits as err:
        raise query.BudgetError(str(err)) from None

    # costs at full precision (repr): query.py re-checks the budgets on these values, and the
    # search pushes right up against them
    rows = []
    for rank, (arch, s) in enumerate(results, 1):
        c = space.cost(arch, shape, num_classes)
        row = [rank, space.to_str(arch), f"{s:.6g}", repr(c.flops_M), repr(c.params_M)]
        if latency is not None:
            row.append(repr(latency.arch_ms(space, arch)))
        rows.append(row)
    extra = ["latency_ms"] if latency is not None else []
    atomic_write_csv(cfg.out, [*COLUMNS, *extra], rows)
    # the scored archs are a small table: query.py shows, plots and exports them
    qcfg = cfg.copy()
    with open_dict(qcfg):
        qcfg.table, qcfg.score_column, qcfg.higher_is_better = str(cfg.out), "score", True
    out = query.run(qcfg)
    metrics = {
        "search/scored": len(results),
        "search/best_score": results[0][1],
        "search/total_s": time.perf_counter() - start,
    }
    atomic_write_json(
        cfg.metrics,
        {
            "metrics": metrics,
            "best": out["best"],
            "config": OmegaConf.to_container(cfg, resolve=True),
            "checkpoint_hash": ckpt.get("hash"),
            "git": git_hash(),
        },
    )
    return {**out, "out": str(cfg.out), "metrics": metrics, "results": results}


def report(cfg: DictConfig, out: dict[str, Any]) -> None:
    query.print_top(out, "score")
    m = out["metrics"]
    print(f"scored {m['search/scored']} archs in {m['search/total_s']:.1f} s -> {out['out']}")

"""Evolutionary search of a space too large to tabulate (the 20-layer chain), scored by the fitted
predictor, under FLOPs / params / latency budgets: every arch scored as a CSV, best first, and the
best ones as query.py shows them, handed over in memory (a table, the Pareto front, the best arch as JSON and YAML).

    python scripts/search.py space=chain checkpoint=predictor.ckpt max_flops_M=50
    python scripts/search.py space=chain checkpoint=predictor.ckpt latency_table=latency.json \
        max_latency_ms=5 search.generations=100 search.population=128 search.parents=32

The search's own knobs (population, parents, generations, mutate_prob, crossover_fraction) are the
`search` config group (conf/search/), the same under nas-search and nas-run; budgets and top_k are
the stage's keys.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hydra
import torch
from omegaconf import DictConfig, OmegaConf, open_dict

from predictor.budgets import BudgetError, LatencyBudget, read_budgets, read_latency_table
from predictor.io import check_fit_record, read_fit_record
from predictor.module import GCNPredictor, RidgePredictor
from predictor.scored import scored_from_search, search_csv_rows
from predictor.search import EvolutionSearch, NoArchFits
from predictor.stages import query
from predictor.table import load_fitted, predict_archs
from supernet.latency import LatencyTable
from supernet.space import Arch, SearchSpace
from supernet.utils import DataError, atomic_write_csv, atomic_write_json, check_count, git_hash


def load_latency(cfg: DictConfig, space: SearchSpace) -> LatencyTable | None:
    """The latency table of `latency_table=FILE`, checked against the space and the input shape
    (None without one)."""
    if not cfg.latency_table:
        if cfg.max_latency_ms is not None:
            raise DataError(
                f"max_latency_ms={cfg.max_latency_ms} needs latency_table=FILE "
                "(a JSON from scripts/latency.py)"
            )
        return None
    return read_latency_table(cfg.latency_table, space, list(cfg.input_shape))


def load_predictor(
    cfg: DictConfig, space: SearchSpace
) -> tuple[GCNPredictor | RidgePredictor, dict]:
    """The fitted predictor of `checkpoint=` and its checkpoint, refused when fitted on another
    layout (`predictor.table.load_fitted`), or not the one the `fit.json` beside it records."""
    if Path(str(cfg.checkpoint)).is_file():
        record = read_fit_record(cfg.checkpoint)
        check_fit_record(cfg.checkpoint, record, "checkpoint", required=False)
    return load_fitted(cfg.checkpoint, space)


def build_search(
    cfg: DictConfig,
    space: SearchSpace,
    score: Callable[[list[Arch]], list[float]],
    latency: LatencyTable | None = None,
) -> EvolutionSearch:
    """The `EvolutionSearch` of the search group (`cfg.search`: population, parents, mutate_prob,
    crossover_fraction) under the stage's budgets, scoring with `score`."""
    evo = cfg.search
    budget = None
    if cfg.max_latency_ms is not None:
        budget = LatencyBudget(space, latency, float(cfg.max_latency_ms))  # type: ignore[arg-type]
    return EvolutionSearch(
        space,
        score,
        population_size=int(evo.population),
        parents=int(evo.parents),
        mutate_prob=float(evo.mutate_prob),
        crossover_fraction=float(evo.crossover_fraction),
        max_flops_M=cfg.max_flops_M,
        max_params_M=cfg.max_params_M,
        constraint=budget,
        input_shape=tuple(cfg.input_shape),
        num_classes=int(cfg.num_classes),
        seed=int(cfg.seed),
    )


def evolve(
    cfg: DictConfig,
    space: SearchSpace,
    predictor: GCNPredictor | RidgePredictor,
    u_all: torch.Tensor | None,
    latency: LatencyTable | None,
) -> list[tuple[Arch, float]]:
    """The evolutionary search under the budgets of `cfg`, `search.generations` long: every
    (arch, score) scored, best first.

    Raises:
        BudgetError: when no arch meets the budgets.
    """
    batch = int(cfg.predict_batch_size)

    def score(archs: list[Arch]) -> list[float]:
        return predict_archs(predictor, space, archs, u_all, batch).tolist()

    try:
        return build_search(cfg, space, score, latency).run(int(cfg.search.generations))
    except NoArchFits as err:
        raise BudgetError(str(err)) from None


def run(cfg: DictConfig) -> dict:
    """Searches, writes `out` (every arch scored, best first) and shows / exports the best ones
    through `query.answer`, handed the scored archs in memory.

    Returns:
        `query.answer`'s result (`top`, `best`, `front`, paths) plus `out`, `metrics` and
        `results` (every (arch, score) scored, best first).

    Raises:
        DataError: a missing or mismatched checkpoint or latency table.
        BudgetError: when no arch meets the budgets.
    """
    start = time.perf_counter()
    for key, least in (("population", 2), ("parents", 1), ("generations", 0)):
        check_count(f"search.{key}", cfg.search[key], least)
    check_count("top_k", cfg.top_k, 1)
    read_budgets(cfg)  # a bad budget fails before the checkpoint is read
    space = hydra.utils.instantiate(cfg.space)
    predictor, ckpt = load_predictor(cfg, space)
    latency = load_latency(cfg, space)
    # features of every arch: only a listable space has them
    results = evolve(cfg, space, predictor, ckpt.get("u"), latency)
    shape, num_classes = tuple(cfg.input_shape), int(cfg.num_classes)
    scored = scored_from_search(space, results, str(cfg.out), shape, num_classes, latency)
    atomic_write_csv(cfg.out, scored.header, search_csv_rows(scored))
    out = query.answer(as_query(cfg), space, scored)
    metrics = {
        "search/scored": len(results),
        "search/best_score": results[0][1],
        "search/total_s": time.perf_counter() - start,
    }
    config = OmegaConf.to_container(cfg, resolve=True)
    record = {"metrics": metrics, "best": out["best"], "config": config}
    atomic_write_json(
        cfg.metrics, {**record, "checkpoint_hash": ckpt.get("hash"), "git": git_hash()}
    )
    return {**out, "out": str(cfg.out), "metrics": metrics, "results": results}


def as_query(cfg: DictConfig) -> DictConfig:
    """The search's config as the query of its CSV (`query_run.json` records it)."""
    qcfg = cfg.copy()
    with open_dict(qcfg):
        qcfg.table, qcfg.score_column, qcfg.higher_is_better = str(cfg.out), "score", True
    return qcfg


def report(cfg: DictConfig, out: dict[str, Any]) -> None:
    query.print_top(out, "score")
    m = out["metrics"]
    print(f"scored {m['search/scored']} archs in {m['search/total_s']:.1f} s -> {out['out']}")

"""The whole pipeline: train the supernet, evaluate subnets, score every arch zero-shot, fit the
predictor, query the table.

Each stage is the stage script's own `run(cfg)`, given its own composed config (conf/<stage>.yaml)
with the shared groups and seed of this run, the stage's section of conf/run.yaml, and the file the
previous stage wrote. All outputs land in one folder.

Each stage logs a line when it starts and one with its wall time when it ends; at the end a
one-screen summary (stage times, the supernet's reference-arch accuracies, the fit's held-out tau,
the top archs, the plots, and a warning block when the answer looks like noise) is logged and
written to `summary.md`.

The zero-shot stage scores one member of each class of same-function archs (WRCor and MeCo by
default) and the fit takes that file as `features`: the table is then the fusion of the fitted
prediction, WRCor and MeCo (live params too when only one of them is scored), the best ranking
measured (BENCHMARKS.md, issue 18). The fit takes it only when it covers every class (not under a
`zeroshot.limit`, as in debug=tiny).

A space too large to tabulate (the 20-layer chain) has no table to query: `search` runs in place of
`query`, from fit's checkpoint, with the query section's budgets where the search section has none;
it has no class list to score either, so the zero-shot stage is skipped there.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Any

import hydra
import torch
from hydra import compose
from omegaconf import DictConfig, OmegaConf, open_dict

from predictor.stages import fit, query, search
from predictor.summary import build_summary, read_last_metrics, reference_accuracies
from supernet.progress import Heartbeat, format_seconds
from supernet.stages import evaluate, train, zeroshot
from supernet.utils import DataError, atomic_write_text

log = logging.getLogger(__name__)

SHARED = (
    "seed",
    "space",
    "data",
    "evaluator",
    "sampler",
    "supernet",
    "trainer",
    "logger",
    "callbacks",
    "predictor",
    "search",  # the search group (population...); the NB201 benchmark's stages read none of it
    "zeroshot",  # the proxies group's node (proxies, limit...): the zero-shot stage's
)
STAGES = {
    "train": train.run,
    "evaluate": evaluate.run,
    "zeroshot": zeroshot.run,
    "fit": fit.run,
    "query": query.run,
    "search": search.run,
}
# the query section's keys that a search in its place takes over
QUERY_TO_SEARCH = ("top_k", "max_flops_M", "max_params_M", "max_latency_ms")


def stage_config(
    cfg: DictConfig, stage: str, chain: dict[str, Any], shared: tuple[str, ...] = SHARED
) -> DictConfig:
    """conf/<stage>.yaml, then this run's shared groups, the stage's section (its non-null keys)
    and the chained files. Needs an initialised Hydra (inside @hydra.main, or `hydra.initialize_config_dir`).

    A section named as a shared group's node (run.yaml's `search`, the NB201 benchmark's
    `zeroshot`) is both: the keys the stage's config has at its top level (`search.top_k`,
    `zeroshot.archs`) are the section's, the rest (`search.population`) the group's."""
    base = compose(config_name=stage)
    node = cfg.get(stage) or {}
    both = stage in shared and stage in base
    with open_dict(base):
        for key in shared:
            if key in base and key in cfg and key != stage:
                base[key] = cfg[key]
        group = [k for k in node if both and k not in base]
        for key in group:  # each replaced, not merged: proxies=[wrcor] drops the other proxies
            base[stage][key] = node[key]
        base.paths.output_dir = cfg.paths.output_dir
        base.paths.root_dir = cfg.paths.root_dir
        for key, value in chain.items():  # dotted keys reach into a node: sampler.scores
            OmegaConf.update(base, key, value, force_add=True)
        section = {k: v for k, v in node.items() if v is not None and k not in group}
        merged = OmegaConf.merge(base, section)
    return merged


def plan(cfg: DictConfig) -> tuple[list[str], bool]:
    """The stages to run, in order, and whether `search` took `query`'s place (a space too large
    to tabulate has no table to query, and no class list for `zeroshot` to score: it is dropped)."""
    unknown = [s for s in cfg.stages if s not in STAGES]
    if unknown:
        raise DataError(f"unknown stage(s) {unknown}; expected some of {list(STAGES)}")
    stages = list(cfg.stages)
    space = hydra.utils.instantiate(cfg.space)
    swapped = "query" in stages and not space.enumerable
    if swapped:
        stages = list(dict.fromkeys("search" if s == "query" else s for s in stages))
        log.info(
            f"space {space.name} has {space.size:.3g} archs, too many for a table: running "
            "`search` in place of `query`"
        )
    if "zeroshot" in stages and not space.enumerable:
        stages.remove("zeroshot")
        log.info(f"space {space.name} is too large to score every arch: skipping `zeroshot`")
    if "zeroshot" in stages:
        zeroshot.plan(cfg)  # its proxies' settings fail now, not after training
    if (
        "train" in stages
        and reads_scores(cfg)
        and "zeroshot" not in stages[: stages.index("train")]
    ):
        raise DataError(
            "the training sampler draws paths by zero-shot scores (sampler=prior) and sampler.scores "
            "is unset: give it a file, or score first: stages=[zeroshot,train,evaluate,fit,query]"
        )
    return stages, swapped


def reads_scores(cfg: DictConfig) -> bool:
    """Whether training's sampler (`sampler`, or the `train` section's) draws by zero-shot scores
    (`sampler=prior`) and nobody named its file: the zero-shot stage's own is then chained in."""
    section = (cfg.get("train") or {}).get("sampler") or {}
    sampler = {**(cfg.get("sampler") or {}), **section}
    return str(sampler.get("_target_", "")).endswith(".PriorSampler") and not sampler.get("scores")


def covers_space(cfg: DictConfig, result: dict[str, Any]) -> bool:
    """Whether the zero-shot stage's file scores every arch (`archs=all`) or every class
    (`archs=classes`) with no `zeroshot.limit`: what `fit`'s features need."""
    section = cfg.get("zeroshot") or {}
    listing = str(section.get("archs", "all"))
    return (
        listing in ("all", "classes")
        and not section.get("limit")
        and result["total"] >= result["archs"] > 0
    )


def chained(cfg: DictConfig, stage: str, results: dict[str, Any], swapped: bool) -> dict[str, Any]:
    """What `stage` takes from the stages before it (the file each wrote), and for a search in
    `query`'s place, the query section's budgets."""
    if stage == "train":
        scored = "zeroshot" in results and reads_scores(cfg)
        return {"sampler.scores": results["zeroshot"]["out"]} if scored else {}
    if stage == "evaluate":
        return {"ckpt_path": results["train"]["ckpt_path"]} if "train" in results else {}
    if stage == "fit":
        chain = {"samples": results["evaluate"]["out"]} if "evaluate" in results else {}
        if "zeroshot" in results and covers_space(cfg, results["zeroshot"]):
            chain["features"] = results["zeroshot"]["out"]
        return chain
    if stage == "query":
        return {"table": results["fit"]["table"]} if "fit" in results else {}
    if stage == "search":
        section = (cfg.get("query") or {}) if swapped else {}
        chain = {k: section[k] for k in QUERY_TO_SEARCH if section.get(k) is not None}
        if "fit" in results:
            chain["checkpoint"] = results["fit"]["checkpoint"]
        return chain
    return {}


def run_stage(stage: str, scfg: DictConfig) -> dict[str, Any]:
    """One stage's `run`, with progress in the log: epoch lines for training (Lightning's bar
    leaves none in a file), a line every 30 s for the stages that report none of their own."""
    if stage == "train":
        return train.run(scfg, extra_callbacks=[train.EpochProgress(log)])
    quiet = stage in ("fit", "query", "search") and not sys.stdout.isatty()
    with Heartbeat(f"stage {stage}", log, enabled=quiet):
        return STAGES[stage](scfg)


def run(cfg: DictConfig) -> dict[str, Any]:
    """Runs `cfg.stages` in order (`search` for `query` when the space is too large to tabulate);
    returns each stage's result."""
    stages, swapped = plan(cfg)
    if cfg.get("num_threads"):
        torch.set_num_threads(int(cfg.num_threads))
    results: dict[str, Any] = {}
    stage_s: dict[str, float] = {}
    for stage in stages:
        log.info(f"stage {stage}: started")
        t0 = time.perf_counter()
        results[stage] = run_stage(
            stage, stage_config(cfg, stage, chained(cfg, stage, results, swapped))
        )
        stage_s[stage] = time.perf_counter() - t0
        log.info(f"stage {stage}: done in {format_seconds(stage_s[stage])}")
    results["output_dir"] = str(Path(cfg.paths.output_dir))
    results["stage_s"] = stage_s
    results["summary"], results["warnings"] = summarise(cfg, results)
    return results


def summarise(cfg: DictConfig, results: dict[str, Any]) -> tuple[str, list[str]]:
    """Builds the run's summary, writes `summary.md` beside the outputs; returns it and its
    warnings."""
    out = Path(results["output_dir"])
    train = results.get("train")
    if train is not None:
        ref_acc = reference_accuracies(train["metrics"])
    else:  # a run that starts later: the training logs of this folder, if any
        logged = read_last_metrics(out / "csv" / "metrics.csv")
        ref_acc = reference_accuracies(logged) if logged else None
    answer = results.get("query") or results.get("search") or {}
    score_column = str((cfg.get("query") or {}).get("score_column") or "score")
    plots = [p for p in ((results.get("fit") or {}).get("plot"), answer.get("pareto_plot")) if p]
    ref_archs = list((cfg.get("supernet") or {}).get("reference_archs") or [])
    if not ref_archs and ref_acc:  # what SupernetModule logs without a list
        space = hydra.utils.instantiate(cfg.space)
        ref_archs = [space.to_str(a) for a in space.default_reference_archs()]
    text, warnings = build_summary(
        out,
        results["stage_s"],
        ref_acc,
        int(cfg.data.num_classes),
        (results.get("fit") or {}).get("metrics"),
        answer.get("top", []),
        score_column if "query" in results else "score",
        [p for p in plots if Path(p).is_file()],
        ref_archs,
    )
    atomic_write_text(out / "summary.md", text + "\n")
    return text, warnings


def report(cfg: DictConfig, results: dict[str, Any]) -> None:
    answer = results.get("query") or results.get("search")
    if answer is not None:
        query.print_top(
            answer, str(cfg.query.score_column or "score") if "query" in results else "score"
        )
    log.info(
        "summary (also in %s):\n%s", Path(results["output_dir"]) / "summary.md", results["summary"]
    )
    for warning in results["warnings"]:
        log.warning(warning)
    log.info(f"pipeline outputs in {results['output_dir']}")

"""Console commands of the supernet stages (`nas-train`, `nas-evaluate`, ...; see pyproject.toml).

Each is `@hydra.main` around a stage module's `run(cfg)` and `report(cfg, result)`, with the configs
that ship inside the package (`conf/` of the source tree, installed as the `nas_conf` package). Bad
input (`DataError`, a missing file) is one line on stderr and exit code 2.

A command names its stage by module path and imports it only when it runs: a process imports its
own stage, not every stage (Lightning, torch_geometric, torch._dynamo: seconds per process), and
`--help` or `--cfg job` imports none.

Before the stage runs, the config's `extras` node (conf/extras/default.yaml, as
lightning-hydra-template's) prints the config tree and drops known warnings. Under a
hyper-parameter search (conf/hparams_search/), the command returns the value of the config's
`optimized_metric` from the stage's metrics, which is what the sweeper minimises or maximises
(None when it is NaN: a failed trial).
"""

from __future__ import annotations

import importlib
import logging
import math
import sys
import textwrap
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

import hydra
from hydra.errors import InstantiationException
from omegaconf import DictConfig, OmegaConf

from supernet.noise import silence_known_noise
from supernet.utils import DataError

CONFIG_PATH = "pkg://nas_conf"
log = logging.getLogger(__name__)


def command(config_name: str, stage: ModuleType | str) -> Callable[[], None]:
    """A console entry point: composes `conf/<config_name>.yaml` with the command line's overrides,
    runs `stage.run(cfg)`, then `stage.report(cfg, result)`, and ends a W&B run the stage started
    (`finish_wandb_run`), failed if the stage raised or exited.

    `stage` is the stage module or its dotted path (`"supernet.stages.train"`), imported when the
    command runs (after `extras`, so its import warnings are filtered too), not when it is built.
    The entry point keeps it as its `stage` attribute."""

    @hydra.main(config_path=CONFIG_PATH, config_name=config_name, version_base="1.3")
    def main(cfg: DictConfig) -> float | None:
        apply_extras(cfg)
        try:
            value = run_stage(load_stage(stage), cfg)
        except BaseException:
            finish_wandb_run(exit_code=1)
            raise
        finish_wandb_run(exit_code=0)
        return value

    main.stage = stage  # type: ignore[attr-defined]
    return main


def load_stage(stage: ModuleType | str) -> ModuleType:
    """The stage module: `stage` itself, or the module its dotted path names, imported now."""
    return importlib.import_module(stage) if isinstance(stage, str) else stage


def run_stage(stage: ModuleType, cfg: DictConfig) -> float | None:
    """`stage.run(cfg)` then `stage.report`; returns the value for a sweeper (`sweeper_value`).

    Raises:
        SystemExit: code 2 on bad input (`DataError`, a missing file), the message on stderr; also
            when Hydra's `instantiate` raised it from a config object's constructor (a sampler's
            settings, its input file).
    """
    try:
        result = stage.run(cfg)
        value = optimized_value(cfg.get("optimized_metric"), result)
    except (DataError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except InstantiationException as err:
        if not isinstance(err.__cause__, (DataError, FileNotFoundError)):
            raise
        print(f"error: {err.__cause__}", file=sys.stderr)
        sys.exit(2)
    stage.report(cfg, result)
    return sweeper_value(cfg.get("optimized_metric"), value)


def finish_wandb_run(exit_code: int) -> None:
    """Ends the W&B run that the stage's `logger=wandb` started, if any. The jobs of a multirun
    share one process, and Lightning's WandbLogger joins a run in progress: without this, every
    job after the first logged into the first job's run."""
    wandb = sys.modules.get("wandb")  # never imported here: only a stage that used it has it
    if wandb is not None and getattr(wandb, "run", None) is not None:
        wandb.finish(exit_code=exit_code)


def sweeper_value(metric: str | None, value: float | None) -> float | None:
    """What the command returns to a sweeper: the metric's value, or None (with a warning) when it
    is NaN, which the Optuna sweeper counts as a failed trial. hydra-optuna-sweeper 1.3.0 stops
    the whole sweep on a NaN instead: it hands the failed trial's value back to Optuna, which
    refuses it."""
    if value is None or math.isfinite(value):
        return value
    log.warning("optimized_metric=%s is NaN: this trial counts as failed", metric)
    return None


def apply_extras(cfg: DictConfig) -> None:
    """The config's `extras` node: `ignore_warnings` (default true) drops the known messages no
    user can act on; `print_config` prints the composed config as a rich tree."""
    extras = cfg.get("extras") or {}
    if extras.get("ignore_warnings", True):
        silence_known_noise()
    if extras.get("print_config", False):
        print_config_tree(cfg)


def print_config_tree(cfg: DictConfig) -> None:
    """The config as a rich tree: a leaf per top-level value, a branch with its YAML per group,
    resolved where it can be (a required `???` value or an interpolation that fails is shown as
    written; the stage reports it)."""
    from rich import print as rich_print
    from rich.syntax import Syntax
    from rich.tree import Tree

    tree = Tree("config", guide_style="dim")
    for key in cfg:
        first, *rest = config_text(cfg, str(key)).rstrip().splitlines()
        if rest:
            tree.add(first).add(Syntax(textwrap.dedent("\n".join(rest)), "yaml"))
        else:
            tree.add(first)
    rich_print(tree)


def config_text(cfg: DictConfig, key: str) -> str:
    """`{key: cfg[key]}` as YAML, resolved if it can be."""
    if OmegaConf.is_missing(cfg, key):
        return f"{key}: ???"
    try:
        value = cfg[key]
        plain = (
            OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value
        )
        return OmegaConf.to_yaml({key: plain})
    except Exception:  # any resolver error: show the unresolved text
        return OmegaConf.to_yaml(OmegaConf.masked_copy(cfg, [key]))


def optimized_value(metric: str | None, result: Mapping[str, Any]) -> float | None:
    """The value of `metric` (e.g. `val/acc`) among the stage's `metrics` (or its result's own
    keys), for a hyper-parameter sweeper; no metric asked for: None.

    Raises:
        DataError: the stage reported no such metric (the ones it has are named).
    """
    if not metric:
        return None
    metrics = {**result, **(result.get("metrics") or {})}
    value = metrics.get(metric)
    if isinstance(value, bool) or not isinstance(value, int | float):
        have = sorted(k for k, v in metrics.items() if isinstance(v, int | float))
        raise DataError(f"optimized_metric={metric} is not among the stage's metrics {have}")
    return float(value) if math.isfinite(value) else math.nan


train = command("train", "supernet.stages.train")
evaluate = command("evaluate", "supernet.stages.evaluate")
zeroshot = command("zeroshot", "supernet.stages.zeroshot")
retrain = command("retrain", "supernet.stages.retrain")
export = command("export", "supernet.stages.export")
latency = command("latency", "supernet.stages.latency")

"""Console commands of the supernet stages (`nas-train`, `nas-evaluate`, ...; see pyproject.toml).

Each is `@hydra.main` around a stage module's `run(cfg)` and `report(cfg, result)`, with the configs
that ship inside the package (`conf/` of the source tree, installed as the `nas_conf` package). Bad
input (`DataError`, a missing file) is one line on stderr and exit code 2.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import ModuleType

import hydra
from omegaconf import DictConfig

from supernet.noise import silence_known_noise
from supernet.stages import evaluate as _evaluate
from supernet.stages import export as _export
from supernet.stages import latency as _latency
from supernet.stages import retrain as _retrain
from supernet.stages import train as _train
from supernet.stages import zeroshot as _zeroshot
from supernet.utils import DataError

CONFIG_PATH = "pkg://nas_conf"


def command(config_name: str, stage: ModuleType) -> Callable[[], None]:
    """A console entry point: composes `conf/<config_name>.yaml` with the command line's overrides,
    runs `stage.run(cfg)`, then `stage.report(cfg, result)`."""

    @hydra.main(config_path=CONFIG_PATH, config_name=config_name, version_base="1.3")
    def main(cfg: DictConfig) -> None:
        silence_known_noise()
        try:
            result = stage.run(cfg)
        except (DataError, FileNotFoundError) as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(2)
        stage.report(cfg, result)

    return main


train = command("train", _train)
evaluate = command("evaluate", _evaluate)
zeroshot = command("zeroshot", _zeroshot)
retrain = command("retrain", _retrain)
export = command("export", _export)
latency = command("latency", _latency)

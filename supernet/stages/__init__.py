"""The supernet side's pipeline stages, one module each: `run(cfg)` does the stage from its composed
Hydra config and returns what it wrote; `report(cfg, result)` says it on the console.

`train` (the supernet), `evaluate` (subnets with inherited weights -> subnets.csv), `zeroshot`
(proxy scores at initialisation), `retrain` (one arch standalone), `export` (one arch as a plain
network), `latency` (a per-op latency table). The console commands (`supernet.cli`) wrap them.
"""

from hydra.core.hydra_config import HydraConfig


def command_line() -> list[str]:
    """This run's command-line overrides (none when not run by `@hydra.main`): how a stage tells
    an explicit `space=` from the configured default."""
    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []

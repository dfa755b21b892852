"""The predictor side's pipeline stages, one module each: `run(cfg)` does the stage from its
composed Hydra config and returns what it wrote; `report(cfg, result)` says it on the console.

`fit` (predictor + lookup table), `query` (the table's best archs under budgets), `search` (for
spaces too large to tabulate), `pipeline` (every stage into one folder). The console commands
(`predictor.cli`) wrap them.
"""

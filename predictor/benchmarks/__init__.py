"""Benchmarks: each module's `run(cfg)` measures one claim of BENCHMARKS.md through the same stages
and library the pipeline uses; `predictor.cli` holds their console commands."""

"""Retrain the main job's pick vs random archs (`nas-bench-pick`). Its logic and config: `predictor.benchmarks.pick.main`."""

from predictor.benchmarks.pick import main

if __name__ == "__main__":
    main()

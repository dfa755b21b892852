"""Segment-wise search vs random search (`nas-bench-search`). Its logic and config: `predictor.cli.bench_search`."""

from predictor.cli import bench_search

if __name__ == "__main__":
    bench_search()

"""Ranking methods on real supernet accuracies (`nas-bench-ranking`). Its logic and config: `predictor.cli.bench_ranking`."""

from predictor.cli import bench_ranking

if __name__ == "__main__":
    bench_ranking()

"""The pipeline's ranking on NAS-Bench-201 (`nas-bench-nb201`). Its logic and config: `predictor.cli.bench_nb201`."""

from predictor.cli import bench_nb201

if __name__ == "__main__":
    bench_nb201()

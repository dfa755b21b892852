"""The predictor on simulated noisy labels (`nas-bench-predictor`). Its logic and config: `predictor.cli.bench_prediction`."""

from predictor.cli import bench_prediction

if __name__ == "__main__":
    bench_prediction()

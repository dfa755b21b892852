"""The supernet ranking lab (`nas-bench-supernet`). Its logic and config: `predictor.cli.bench_supernet`."""

from predictor.cli import bench_supernet

if __name__ == "__main__":
    bench_supernet()

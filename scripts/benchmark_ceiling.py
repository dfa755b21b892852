"""What fusion can reach from a supernet's every-arch accuracies (`nas-bench-ceiling`). Its logic and config: `predictor.cli.bench_ceiling`."""

from predictor.cli import bench_ceiling

if __name__ == "__main__":
    bench_ceiling()

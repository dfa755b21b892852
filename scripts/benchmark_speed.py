"""CPU/GPU speed of each stage (`nas-bench-speed`). Its logic and config: `predictor.cli.bench_speed`."""

from predictor.cli import bench_speed

if __name__ == "__main__":
    bench_speed()

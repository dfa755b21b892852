"""Zero-shot proxies vs NB201 truth (`nas-bench-zeroshot`). Its logic and config: `predictor.cli.bench_zeroshot`."""

from predictor.cli import bench_zeroshot

if __name__ == "__main__":
    bench_zeroshot()

"""Zero-shot proxies vs NB201 truth (`nas-bench-zeroshot`). Its logic and config: `predictor.benchmarks.zeroshot.main`."""

from predictor.benchmarks.zeroshot import main

if __name__ == "__main__":
    main()

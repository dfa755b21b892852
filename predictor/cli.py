"""Console commands of the predictor stages, the whole pipeline and the benchmarks (`nas-fit`,
`nas-run`, `nas-bench-ranking`, ...; see pyproject.toml), built as `supernet.cli.command` builds
the supernet's: each names its module by path and imports only that one when it runs."""

from __future__ import annotations

from supernet.cli import command

fit = command("fit", "predictor.stages.fit")
query = command("query", "predictor.stages.query")
search = command("search", "predictor.stages.search")
run = command("run", "predictor.stages.pipeline")
bench_nb201 = command("benchmark_nb201", "predictor.benchmarks.nb201")
bench_prediction = command("benchmark_predictor", "predictor.benchmarks.prediction")
bench_ranking = command("benchmark_ranking", "predictor.benchmarks.ranking")
bench_search = command("benchmark_search", "predictor.benchmarks.search")
bench_speed = command("benchmark_speed", "predictor.benchmarks.speed")
bench_zeroshot = command("benchmark_zeroshot", "predictor.benchmarks.zeroshot")
bench_ceiling = command("benchmark_ceiling", "predictor.benchmarks.ceiling")
bench_supernet = command("benchmark_supernet", "predictor.benchmarks.lab")

"""Console commands of the predictor stages, the whole pipeline and the benchmarks (`nas-fit`,
`nas-run`, `nas-bench-ranking`, ...; see pyproject.toml), built as `supernet.cli.command` builds
the supernet's."""

from __future__ import annotations

from predictor.benchmarks import ceiling as _ceiling
from predictor.benchmarks import lab as _lab
from predictor.benchmarks import nb201 as _nb201
from predictor.benchmarks import prediction as _prediction
from predictor.benchmarks import ranking as _ranking
from predictor.benchmarks import search as _bench_search
from predictor.benchmarks import speed as _speed
from predictor.benchmarks import zeroshot as _zeroshot
from predictor.stages import fit as _fit
from predictor.stages import pipeline as _pipeline
from predictor.stages import query as _query
from predictor.stages import search as _search
from supernet.cli import command

fit = command("fit", _fit)
query = command("query", _query)
search = command("search", _search)
run = command("run", _pipeline)
bench_nb201 = command("benchmark_nb201", _nb201)
bench_prediction = command("benchmark_predictor", _prediction)
bench_ranking = command("benchmark_ranking", _ranking)
bench_search = command("benchmark_search", _bench_search)
bench_speed = command("benchmark_speed", _speed)
bench_zeroshot = command("benchmark_zeroshot", _zeroshot)
bench_ceiling = command("benchmark_ceiling", _ceiling)
bench_supernet = command("benchmark_supernet", _lab)

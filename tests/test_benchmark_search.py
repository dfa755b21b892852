import pytest
from hydra import initialize_config_dir

from predictor.benchmarks.search import run
from tests.conftest import CONF, make_cfg


def test_tiny_search_benchmark(tmp_path):
    cfg = make_cfg(
        "benchmark_search",
        tmp_path,
        [
            "space=chain_tiny",
            "evaluations=12",
            "segments=[[0,1],[2,3]]",
            "top=2",
            "retrain_epochs=1",
            "predictor.ensemble=1",
            "predictor.epochs=10",
            "generations=2",
            "evolution.population_size=8",
            "evolution.parents=2",
        ],
    )
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        report = run(cfg)
    assert report["evaluations"]["random"] == 12 >= report["evaluations"]["guided"]
    assert report["evaluations"]["evolution"] == 12
    for name in ("random", "guided", "evolution"):
        rows = report[name]
        assert len(rows) == 2
        assert all(r["flops_M"] <= report["budget_flops_M"] for r in rows)
        assert all(0 <= r["test_acc"] <= 100 and 0 <= r["supernet_test_acc"] <= 100 for r in rows)
        assert rows[0]["supernet_acc"] >= rows[1]["supernet_acc"]  # each method's best measured
        mean = sum(r["supernet_acc"] for r in rows) / 2
        assert report[f"{name}_mean_supernet_acc"] == pytest.approx(mean)
    assert (tmp_path / "benchmark_search.json").is_file()

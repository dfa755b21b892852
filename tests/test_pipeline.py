"""The whole pipeline end to end on the tiny preset: train -> evaluate -> fit -> query -> retrain."""

import csv
import json

from hydra import initialize_config_dir

from scripts import retrain
from scripts.run import run
from tests.conftest import CONF, make_cfg

FAST_FIT = ["predictor.ensemble=2", "predictor.epochs=30"]


def test_pipeline_end_to_end(tmp_path):
    cfg = make_cfg("run", tmp_path, FAST_FIT)
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        results = run(cfg)
    assert set(results) >= {"train", "evaluate", "fit", "query"}
    subnets = list(csv.DictReader(open(tmp_path / "subnets.csv")))
    assert len(subnets) == 12  # debug=tiny evaluates 12 archs
    table = list(csv.DictReader(open(tmp_path / "table.csv")))
    assert len(table) == 15_625 == len({r["arch"] for r in table})
    scores = [float(r["score"]) for r in table]
    assert scores == sorted(scores, reverse=True)
    # digits are 1x8x8: the table's costs are for that input, not CIFAR's
    assert min(float(r["flops_M"]) for r in table) < 1.0
    best = json.loads((tmp_path / "best_arch.json").read_text())
    assert best["arch"] == table[0]["arch"]
    for name in ("train_run.json", "evaluate_run.json", "fit.json", "pareto.png"):
        assert (tmp_path / name).is_file(), name

    # the exported arch retrains standalone from its JSON file
    rcfg = make_cfg("retrain", tmp_path / "retrain", [f"arch={tmp_path / 'best_arch.json'}"])
    out = retrain.run(rcfg)
    assert out["summary"]["arch"] == best["arch"]
    assert 0.0 <= out["summary"]["test_acc"] <= 100.0


def test_stage_sections_override_one_stage(tmp_path):
    cfg = make_cfg(
        "run",
        tmp_path,
        [*FAST_FIT, "stages=[train,evaluate]", "evaluate.num_archs=3", "evaluate.bn=batch"],
    )
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        run(cfg)
    rows = list(csv.DictReader(open(tmp_path / "subnets.csv")))
    assert len(rows) == 3 and {r["bn"] for r in rows} == {"batch"}


def test_pipeline_on_the_chain_space(tmp_path):
    """The same scripts, the other search space (its tiny preset: 1,764 archs)."""
    cfg = make_cfg(
        "run",
        tmp_path,
        [
            *FAST_FIT,
            "space=chain_tiny",
            "evaluate.num_archs=20",
        ],
    )
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        results = run(cfg)
    table = list(csv.DictReader(open(tmp_path / "table.csv")))
    assert len(table) == 1764 == len({r["arch"] for r in table})
    assert results["query"]["best"]["arch"] == table[0]["arch"]
    assert "|" in table[0]["arch"] and "~" not in table[0]["arch"]  # chain strings, not NB201's

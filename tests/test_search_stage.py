"""The search stage for the full chain space (~3e16 archs, no table): fit.py saves only the
checkpoint, search.py searches under FLOPs / latency budgets, run.py swaps query for search."""

from __future__ import annotations

import csv
import json
import logging
import random
from pathlib import Path

import pytest
import torch
from hydra import initialize_config_dir
from omegaconf import DictConfig

from predictor import scored as scored_module
from predictor.stages import fit, query, search
from predictor.stages import pipeline as run_script
from predictor.table import load_checkpoint
from supernet.chain_space import ChainSpace
from supernet.latency import LatencyTable
from supernet.utils import DataError
from tests.conftest import CONF, make_cfg

SPACE = ChainSpace()
FIT = [
    "space=chain",
    "predictor.ensemble=1",
    "predictor.epochs=150",
    "predictor.hidden_channels=16",
    "predictor.num_layers=2",
]
SEARCH = ["space=chain", "search.population=16", "search.parents=4", "search.generations=8"]


def accuracy(arch: tuple[int, ...]) -> float:
    """Made up: every block (not skip) is worth 1 point, expansion 6 another half."""
    ops = [SPACE.ops[a] for a in arch]
    return 50.0 + sum(op != "skip" for op in ops) + 0.5 * sum(op.endswith("e6") for op in ops)


def write_samples(path: Path, n: int = 40) -> Path:
    rng = random.Random(0)
    with open(path, "w") as f:
        f.write("arch,acc\n")
        for _ in range(n):
            arch = SPACE.sample(rng)
            f.write(f"{SPACE.to_str(arch)},{accuracy(arch):.3f}\n")
    return path


def hand_latency(path: Path) -> Path:
    """1 ms fixed; an op costs its kernel size in ms, skip nothing (digits: 1x8x8 input)."""
    ops = [{op: (0.0 if op == "skip" else float(op[4])) for op in SPACE.ops} for _ in SPACE.chain]
    LatencyTable("chain", "hand", 1, [1, 8, 8], 1.0, ops).save(path)
    return path


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    tmp = tmp_path_factory.mktemp("fit")
    samples = write_samples(tmp / "s.csv")
    out = fit.run(make_cfg("fit", tmp / "fit", [f"samples={samples}", *FIT], tiny=False))
    return out, tmp


def search_cfg(out: Path, checkpoint: str, overrides: list[str]) -> DictConfig:
    return make_cfg("search", out, [f"checkpoint={checkpoint}", *SEARCH, *overrides], tiny=False)


def flops(arch: tuple[int, ...]) -> float:
    return SPACE.cost(arch, (1, 8, 8)).flops_M  # digits: 1x8x8 images


def test_fit_on_the_big_space_writes_a_checkpoint_and_no_table(fitted):
    out, tmp = fitted
    assert not SPACE.enumerable and out["table"] is None and out["top"] == []
    assert not (tmp / "fit" / "table.csv").exists()
    pred, ckpt = load_checkpoint(out["checkpoint"], SPACE)
    assert ckpt["u"] is None and ckpt["feature_names"] == []
    assert -1.0 <= out["metrics"]["fit/train_tau"] <= 1.0
    assert (tmp / "fit" / "fit.png").is_file() and (tmp / "fit" / "fit.json").is_file()


@pytest.mark.parametrize(
    "option", ["use_cost_features=true", "features=zs.csv"], ids=["cost", "features"]
)
def test_per_arch_features_are_refused_on_the_big_space(tmp_path, option):
    samples = write_samples(tmp_path / "s.csv", 5)
    cfg = make_cfg("fit", tmp_path / "out", [f"samples={samples}", option, *FIT], tiny=False)
    with pytest.raises(DataError, match=f"{option.split('=')[0]}=.*too many to list"):
        fit.run(cfg)
    assert not (tmp_path / "out").exists()


def test_search_meets_the_flops_budget_and_beats_random_archs(fitted, tmp_path):
    out, _ = fitted
    rng = random.Random(1)
    randoms = [SPACE.sample(rng) for _ in range(300)]
    budget = sorted(flops(a) for a in randoms)[100]  # a third of random archs meet it
    overrides = [f"max_flops_M={budget}", "top_k=5"]
    res = search.run(search_cfg(tmp_path, out["checkpoint"], overrides))
    rows = list(csv.DictReader(open(tmp_path / "search.csv")))
    assert list(rows[0]) == ["rank", "arch", "score", "flops_M", "params_M"]
    assert len(rows) == len(res["results"]) == len({r["arch"] for r in rows}) > 16
    assert [int(r["rank"]) for r in rows] == list(range(1, len(rows) + 1))
    scores = [float(r["score"]) for r in rows]
    assert scores == sorted(scores, reverse=True)
    for r in rows:  # every arch scored meets the budget, by the space's own count
        f = flops(SPACE.parse(r["arch"]))
        assert f <= budget and float(r["flops_M"]) == pytest.approx(f)
    assert [t["arch"] for t in res["top"]] == [r["arch"] for r in rows[:5]]

    best = json.loads((tmp_path / "best_arch.json").read_text())
    assert best["arch"] == rows[0]["arch"] and best["budgets"] == {"max_flops_M": budget}
    assert best["space"] == {"name": "chain", "config": SPACE.config()}  # retrain needs no space=
    assert (tmp_path / "best_arch.yaml").is_file() and (tmp_path / "pareto.png").is_file()
    # the predictor ranks the best arch above every random arch within the same budget
    pred, _ = load_checkpoint(out["checkpoint"], SPACE)
    within = [a for a in randoms if flops(a) <= budget]
    best_score = pred.predict(torch.tensor([SPACE.parse(best["arch"])])).item()
    assert best_score == pytest.approx(float(rows[0]["score"]), rel=1e-4)
    assert best_score > max(pred.predict(torch.tensor(within)).tolist())
    # the same seed searches the same archs
    again = search.run(search_cfg(tmp_path / "again", out["checkpoint"], overrides))
    assert again["results"] == res["results"]


def test_search_hands_its_archs_to_the_query_in_memory(fitted, tmp_path, monkeypatch):
    """search.csv is written for the user; the query part gets the tuples, parses no string and
    reads no file."""
    out, _ = fitted

    def refuse(*args, **kwargs):
        raise AssertionError("the search's archs went through a string or a file")

    monkeypatch.setattr(ChainSpace, "parse", refuse)
    monkeypatch.setattr(scored_module, "read_table", refuse)
    res = search.run(search_cfg(tmp_path, out["checkpoint"], ["top_k=3"]))
    rows = list(csv.DictReader(open(tmp_path / "search.csv")))
    assert [t["arch"] for t in res["top"]] == [r["arch"] for r in rows[:3]]
    assert [t["score"] for t in res["top"]] == [float(r["score"]) for r in rows[:3]]


def test_search_meets_a_latency_budget(fitted, tmp_path):
    out, _ = fitted
    lat = hand_latency(tmp_path / "lat.json")
    table = LatencyTable.load(lat)
    res = search.run(
        search_cfg(tmp_path, out["checkpoint"], [f"latency_table={lat}", "max_latency_ms=60"])
    )
    rows = list(csv.DictReader(open(tmp_path / "search.csv")))
    assert list(rows[0])[-1] == "latency_ms" and len(rows) == len(res["results"])
    for r in rows:
        ms = table.latency_ms(r["arch"].split("|"))
        assert ms <= 60 and float(r["latency_ms"]) == pytest.approx(ms)
    assert all(t["latency_ms"] <= 60 for t in res["top"])
    assert res["best"]["budgets"] == {"max_latency_ms": 60.0}

    # impossible: the 6 first layers of the stages are never skipped, so at least 1 + 6 * 3 ms
    impossible = [f"latency_table={lat}", "max_latency_ms=10"]
    with pytest.raises(query.BudgetError, match=r"max_latency_ms=10 \(smallest seen"):
        search.run(search_cfg(tmp_path / "no", out["checkpoint"], impossible))
    with pytest.raises(DataError, match="max_latency_ms=60 needs latency_table"):
        search.run(search_cfg(tmp_path / "no", out["checkpoint"], ["max_latency_ms=60"]))
    assert not (tmp_path / "no").exists()


def test_search_refuses_a_checkpoint_of_another_layout(fitted, tmp_path):
    out, _ = fitted
    with pytest.raises(DataError, match="fitted on space"):
        search.run(search_cfg(tmp_path, out["checkpoint"], ["space=chain_tiny"]))


def test_run_swaps_query_for_search_on_the_big_space(fitted, tmp_path, caplog):
    _, tmp = fitted
    cfg = make_cfg(
        "run",
        tmp_path,
        [
            *FIT,
            "stages=[fit,query]",
            f"fit.samples={tmp / 's.csv'}",
            "query.max_flops_M=2",
            "search.population=16",
            "search.parents=4",
            "search.generations=3",
        ],
        tiny=False,
    )
    with caplog.at_level(logging.INFO), initialize_config_dir(str(CONF), version_base="1.3"):
        results = run_script.run(cfg)
    assert "in place of `query`" in caplog.text
    assert "query" not in results and set(results) >= {"fit", "search"}
    rows = list(csv.DictReader(open(tmp_path / "search.csv")))
    assert rows and all(float(r["flops_M"]) <= 2 for r in rows)  # the query section's budget
    assert results["search"]["best"]["arch"] == rows[0]["arch"]

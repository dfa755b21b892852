"""The real-noise ranking benchmark on a hand-made truth and a biased 'supernet' file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from predictor.benchmarks import ranking as bench
from predictor.benchmarks.common import rank_metrics
from supernet.classes import class_index
from supernet.space import NB201Space
from tests.conftest import make_cfg

SPACE = NB201Space()


def test_rank_metrics_on_a_perfect_and_a_reversed_ranking() -> None:
    truth = np.arange(SPACE.size, dtype=float)
    classes = np.arange(SPACE.size)
    perfect, reversed_ = rank_metrics(truth, truth, classes), rank_metrics(-truth, truth, classes)
    assert perfect["kendall"] == perfect["kendall_top10"] == 1.0
    assert perfect["top1"] == truth.max() and perfect["top10"] == np.mean(truth[-10:])
    assert reversed_["kendall"] == -1.0 and reversed_["top1"] == 0.0


def test_tiny_end_to_end(tmp_path: Path) -> None:
    ops = np.array(list(SPACE.all_archs()))
    truth = 50 + 5 * (ops == 3).sum(1) + 2 * (ops == 2).sum(1) - 4 * (ops == 0).sum(1)
    rng = np.random.default_rng(0)
    # a 'supernet' biased against 3x3 convs, with noise; a zero-shot score of the same truth
    supernet = 40 + 2 * (ops == 3).sum(1) + 4 * (ops == 4).sum(1) + rng.normal(0, 2, SPACE.size)
    zero_shot = truth + rng.normal(0, 3, SPACE.size)
    paths = {name: tmp_path / f"{name}.csv" for name in ("truth", "samples", "zs")}
    with open(paths["truth"], "w") as t, open(paths["samples"], "w") as s:
        t.write("arch,cifar10_test\n")
        s.write("arch,acc\n")
        for i, arch in enumerate(SPACE.all_archs()):
            t.write(f"{SPACE.to_str(arch)},{truth[i]}\n")
            s.write(f"{SPACE.to_str(arch)},{min(max(supernet[i], 0), 100):.3f}\n")
    classes = class_index(SPACE)
    with open(paths["zs"], "w") as z:  # one row per class is enough
        z.write("arch,wrcor\n")
        for i in np.unique(classes):
            z.write(f"{SPACE.to_str(SPACE.from_index(int(i)))},{zero_shot[i]}\n")
    cfg = make_cfg(
        "benchmark_ranking",
        tmp_path / "out",
        [
            f"truth={paths['truth']}",
            f"samples={paths['samples']}",
            f"features={paths['zs']}",
            "sizes=[60]",
            "draws=2",
            "with_gcn=false",
        ],
        tiny=False,
    )
    out = bench.run(cfg)
    rows = out["summary"][60]
    assert {"supernet (all archs)", "live ridge", "free vote(zero-shot, params)"} <= set(rows)
    assert len(out["draws"][60]) == 2
    fused = rows["fused: live ridge + zero-shot + live params"]["kendall"][0]
    assert fused > rows["supernet (all archs)"]["kendall"][0]
    saved = json.loads(Path(cfg.results_json).read_text())
    assert saved["summary"]["60"]["live ridge"]["kendall"] == pytest.approx(
        list(rows["live ridge"]["kendall"])
    )
    assert "| 60 | live ridge |" in Path(cfg.results_md).read_text()


def test_skips_without_truth(tmp_path: Path) -> None:
    cfg = make_cfg(
        "benchmark_ranking",
        tmp_path,
        [f"truth={tmp_path / 'absent.csv'}", f"samples={tmp_path / 'absent.csv'}"],
        tiny=False,
    )
    assert "not found" in bench.run(cfg)["skipped"]
    cfg = make_cfg("benchmark_ranking", tmp_path, [], tiny=False)  # truth: null, samples: ???
    assert "no truth given" in bench.run(cfg)["skipped"]

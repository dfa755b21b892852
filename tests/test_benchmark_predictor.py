"""The predictor benchmark's metric code on tiny hand-made truths, and a tiny end-to-end run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from omegaconf import DictConfig

from predictor.benchmarks import prediction as bench
from predictor.benchmarks.common import read_truth
from supernet.space import NB201Space
from tests.conftest import make_cfg

ROOT = Path(__file__).resolve().parents[1]
SHARED_TRUTH = ROOT.parent / "shared" / "data" / "nb201_cifar10.csv"
SPACE = NB201Space()


def compose_cfg(tmp_path: Path, overrides: list[str]) -> DictConfig:
    return make_cfg("benchmark_predictor", tmp_path / "out", overrides, tiny=False)


def test_kendall_on_hand_made_rankings() -> None:
    truth = np.array([10.0, 20.0, 30.0, 40.0])
    assert bench.kendall(truth, truth) == 1.0
    assert bench.kendall(-truth, truth) == -1.0
    # one discordant pair of six: (5 - 1) / 6
    assert bench.kendall(np.array([1.0, 3.0, 2.0, 4.0]), truth) == pytest.approx(4 / 6)


def test_noise_sigma_hits_the_target_tau() -> None:
    truth = np.linspace(0.0, 10.0, 400)
    sigma = bench.noise_sigma(truth, 0.5, seed=3)
    eps = np.random.default_rng(3).standard_normal(400)
    assert bench.kendall(truth + sigma * eps, truth) == pytest.approx(0.5, abs=2e-3)
    assert bench.noise_sigma(truth, 0.8, seed=3) < sigma  # less noise, higher tau


def test_read_truth_joins_on_the_arch_string(tmp_path: Path) -> None:
    path = tmp_path / "truth.csv"
    order = np.random.default_rng(0).permutation(SPACE.size)  # rows in another order
    with open(path, "w") as f:
        f.write("arch,cifar10_test\n")
        for i in order:
            f.write(f"{SPACE.to_str(SPACE.from_index(int(i)))},{i / 100}\n")
    truth = read_truth(path, SPACE, "cifar10_test")
    assert np.allclose(truth, np.arange(SPACE.size) / 100)
    path.write_text("arch,cifar10_test\n" + SPACE.to_str((1,) * 6) + ",5\n")
    with pytest.raises(ValueError, match="15624 archs have no 'cifar10_test'"):
        read_truth(path, SPACE, "cifar10_test")


def test_skips_without_truth(tmp_path: Path) -> None:
    cfg = compose_cfg(tmp_path, [f"truth={tmp_path / 'absent.csv'}"])
    assert "not found" in bench.run(cfg)["skipped"]
    assert "no truth given" in bench.run(compose_cfg(tmp_path, []))["skipped"]  # the default


def test_tiny_end_to_end(tmp_path: Path) -> None:
    path = tmp_path / "truth.csv"
    with open(path, "w") as f:
        f.write("arch,cifar10_test\n")
        for arch in SPACE.all_archs():  # a truth the one-hot ridge fits well
            f.write(f"{SPACE.to_str(arch)},{50 + 5 * arch.count(3) - 3 * arch.count(0)}\n")
    cfg = compose_cfg(
        tmp_path,
        [
            f"truth={path}",
            "seeds=[0]",
            "num_samples=80",
            "timing_samples=40",
            "predictor.ensemble=1",
            "predictor.epochs=2",
            "predictor.hidden_channels=8",
        ],
    )
    out = bench.run(cfg)
    assert out["rows"]["noisy labels (sample)"]["mean"] == pytest.approx(0.5, abs=0.15)
    assert out["rows"]["ridge on one-hot ops"]["mean"] > 0.6
    assert set(out["rows"]) >= {"params", "GCN", "GCN + cost"}
    saved = json.loads(Path(cfg.results_json).read_text())
    assert Path(cfg.results_json).with_name("gcn_vs_truth_seed0.png").is_file()
    assert saved["timing"]["samples"] == 40 and saved["sigma"] == pytest.approx(out["sigma"])
    assert "| GCN |" in Path(cfg.results_md).read_text()


@pytest.mark.skipif(not SHARED_TRUTH.is_file(), reason=f"{SHARED_TRUTH} absent")
def test_shared_truth_best_arch() -> None:
    truth = read_truth(SHARED_TRUTH, SPACE, "cifar10_test")
    # the shared data's README: max 94.3733 (tied), reached by this arch
    best = SPACE.parse(
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|"
        "nor_conv_3x3~1|nor_conv_1x1~2|"
    )
    assert truth[SPACE.index(best)] == truth.max() == pytest.approx(94.3733, abs=1e-3)

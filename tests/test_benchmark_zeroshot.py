"""The zero-shot benchmark: its skips, its votes, and a tiny run on a made-up CIFAR-10 and truth."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from predictor.benchmarks import zeroshot as bench
from supernet.space import NB201Space
from tests.conftest import make_cfg

SPACE = NB201Space()


def fake_cifar10(root: Path, n_train: int = 64, n_test: int = 16) -> Path:
    """Random uint8 images in CIFAR-10's npz layout (x `(N, 32, 32, 3)`, y `(N,)`)."""
    rng = np.random.default_rng(0)
    root.mkdir(parents=True)
    for name, n in (("train", n_train), ("test", n_test)):
        x = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
        np.savez(root / f"{name}.npz", x=x, y=rng.integers(0, 10, n))
    return root


def fake_truth(path: Path) -> Path:
    """A truth for every arch: more 3x3 convs, higher accuracy."""
    rows = [f"{SPACE.to_str(a)},{50 + 5 * a.count(3)}\n" for a in SPACE.all_archs()]
    path.write_text("arch,cifar10_test\n" + "".join(rows))
    return path


def test_skips_without_truth_or_data(tmp_path: Path) -> None:
    assert "no truth given" in bench.run(make_cfg("benchmark_zeroshot", tmp_path))["skipped"]
    truth = fake_truth(tmp_path / "truth.csv")
    cfg = make_cfg("benchmark_zeroshot", tmp_path, [f"truth={truth}"])
    assert "no data_root given" in bench.run(cfg)["skipped"]
    cfg = make_cfg("benchmark_zeroshot", tmp_path, [f"truth={truth}", f"data_root={tmp_path}"])
    assert "CIFAR-10 not found" in bench.run(cfg)["skipped"]
    assert not (tmp_path / "benchmark_zeroshot.json").exists()


def test_votes_need_two_proxies() -> None:
    acc = [1.0, 2.0, 3.0, 4.0]
    scores = {"wrcor": [1.0, 2.0, 3.0, 4.0], "params": [4.0, 3.0, 2.0, 1.0], "flops": acc}
    out = bench.votes(scores, acc)
    assert set(out) == {"vote(all)"}  # one live proxy: no live vote
    assert out["vote(all)"]["spearman"] == pytest.approx(1.0)  # ranks (1,4,1), (2,3,2), ...
    assert bench.votes({"wrcor": acc}, acc) == {}


def test_tiny_run_writes_every_proxy_and_seed(tmp_path: Path) -> None:
    data = fake_cifar10(tmp_path / "cifar10")
    overrides = [
        f"truth={fake_truth(tmp_path / 'truth.csv')}",
        f"data_root={data}",
        "n=6",
        "seeds=[0,1]",
        "proxies=[params,flops,wrcor]",
        "extra_seed_proxies=[params,wrcor]",
        "zeroshot.batch_size=8",
        "device=cpu",
    ]
    cfg = make_cfg("benchmark_zeroshot", tmp_path, overrides)  # debug=tiny: C=4, N=1
    out = bench.run(cfg)
    saved = json.loads(Path(cfg.out).read_text())
    assert saved["n_archs"] == 6 and saved["space"] == {"C": 4, "N": 1}
    assert set(saved["seeds"]["0"]["proxies"]) == {"params", "flops", "wrcor", "vote(all)"}
    assert set(saved["seeds"]["1"]["proxies"]) == {"params", "wrcor", "vote(all)"}
    assert saved["git"] and saved["config"]["n"] == 6 and out["seeds"] == saved["seeds"]
    assert saved["seeds"]["0"]["proxies"]["params"]["ms_per_arch"] > 0
    assert "| 1 | wrcor |" in Path(cfg.out).with_suffix(".md").read_text()
    scores = torch.load(Path(cfg.out).with_suffix(".seed1.pt"))
    assert len(scores["archs"]) == 6 and set(scores["scores"]) == {"params", "wrcor"}

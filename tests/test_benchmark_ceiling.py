"""predictor/benchmarks/ceiling.py on a synthetic truth that is additive in the live ops: the
oracle of that model ranks it almost exactly, the supernet's rows stay below it, nothing runs
without a truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from predictor.benchmarks import ceiling
from supernet.space import NB201Space
from tests.conftest import make_cfg

SPACE = NB201Space()


def write_all(path: Path, values: np.ndarray, column: str) -> Path:
    with open(path, "w") as f:
        f.write(f"arch,{column}\n")
        for arch, v in zip(SPACE.all_archs(), values, strict=True):
            f.write(f"{SPACE.to_str(arch)},{v:.6f}\n")
    return path


def test_additive_truth_is_bounded_by_its_oracle(tmp_path: Path) -> None:
    onehot, counts = ceiling.live_ops(SPACE)
    assert onehot.shape == (SPACE.size, 30) and (counts.sum(1) == 6).all()
    rng = np.random.default_rng(0)
    truth = onehot @ rng.normal(size=30) + 0.01 * rng.normal(size=SPACE.size)
    supernet = truth + rng.normal(scale=truth.std(), size=SPACE.size)  # tau about 0.5
    over = [
        f"samples={write_all(tmp_path / 'sn.csv', supernet, 'acc')}",
        f"truth={write_all(tmp_path / 't.csv', truth, 'cifar10_test')}",
        f"results_json={tmp_path / 'c.json'}",
        f"results_md={tmp_path / 'c.md'}",
    ]
    out = ceiling.run(make_cfg("benchmark_ceiling", tmp_path, over, tiny=False))
    k = {name: m["kendall"] for name, m in out["rows"].items()}
    assert k["oracle: live one-hot ops"] > 0.97
    assert k["supernet"] < k["supernet, ridge on live one-hot"] < k["oracle: live one-hot ops"]
    assert set(out["op_bias"]) <= set(SPACE.ops)
    assert "| oracle: live one-hot ops |" in (tmp_path / "c.md").read_text()


def test_without_truth_it_skips(tmp_path: Path) -> None:
    cfg = make_cfg("benchmark_ceiling", tmp_path, ["samples=x.csv"], tiny=False)
    assert "skipped" in ceiling.run(cfg)


def test_every_feature_column_adds_its_rows(tmp_path: Path) -> None:
    """feature_columns=[a,b]: the one-column rows take the first, the "every zero-shot" rows both;
    two informative columns fused rank closer to the truth than the first alone."""
    rng = np.random.default_rng(1)
    truth = rng.normal(size=SPACE.size)
    supernet = truth + rng.normal(scale=2.0, size=SPACE.size)
    a = truth + rng.normal(scale=1.0, size=SPACE.size)
    b = truth + rng.normal(scale=1.0, size=SPACE.size)
    with open(tmp_path / "zs.csv", "w") as f:
        f.write("arch,a,b\n")
        for arch, x, y in zip(SPACE.all_archs(), a, b, strict=True):
            f.write(f"{SPACE.to_str(arch)},{x:.6f},{y:.6f}\n")
    over = [
        f"samples={write_all(tmp_path / 'sn.csv', supernet, 'acc')}",
        f"truth={write_all(tmp_path / 't.csv', truth, 'cifar10_test')}",
        f"features={tmp_path / 'zs.csv'}",
        "feature_columns=[a,b]",
        f"results_json={tmp_path / 'c.json'}",
        f"results_md={tmp_path / 'c.md'}",
    ]
    k = {
        name: m["kendall"]
        for name, m in ceiling.run(make_cfg("benchmark_ceiling", tmp_path, over, tiny=False))[
            "rows"
        ].items()
    }
    one, every = (
        "free softmin(zero-shot, live params)",
        "free softmin(every zero-shot, live params)",
    )
    assert k[every] > k[one]
    assert "softmin(supernet, every zero-shot, live params)" in k
    # one column: no "every zero-shot" rows (method_rows alone, on a few rows)
    n = 50
    x = rng.normal(size=(4, n))
    onehot = (rng.random((n, 30)) < 0.2).astype(float)
    single = ceiling.method_rows(x[0], np.arange(n), onehot, {"a": x[1]}, x[2], x[3])
    assert one in single and every not in single

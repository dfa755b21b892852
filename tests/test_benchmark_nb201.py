import shutil
from pathlib import Path

import numpy as np
import pytest
from hydra import initialize_config_dir

from predictor.benchmarks.nb201 import aggregate, markdown, run, score_rankings, vote
from supernet.space import NB201Space
from tests.conftest import CONF, SHARED, make_cfg

SPACE = NB201Space()


def test_scoring_against_a_hand_made_truth(tmp_path):
    archs = [SPACE.to_str(SPACE.from_index(i)) for i in (0, 1, 2, 3, 4)]
    truth = tmp_path / "truth.csv"
    truth.write_text(
        "arch,cifar10_test\n" + "".join(f"{a},{v}\n" for a, v in zip(archs, (50, 60, 70, 80, 90)))
    )
    good = {a: float(i) for i, a in enumerate(archs)}
    bad = {a: -float(i) for i, a in enumerate(archs)}
    per_seed = [score_rankings({"good": good, "bad": bad}, truth, SPACE)]
    assert per_seed[0]["good"]["kendall"] == pytest.approx(1.0)
    assert per_seed[0]["bad"]["kendall"] == pytest.approx(-1.0)
    assert per_seed[0]["good"]["top1_true_acc"] == 90.0
    summary = aggregate(per_seed * 2)
    assert summary["good"]["kendall"] == [
        pytest.approx(1.0),
        0.0,
        pytest.approx(1.0),
        pytest.approx(1.0),
    ]
    assert "| good | 5 | 1.000 ± 0.000" in markdown(summary)


def small_container(shared: Path, out: Path, train: int = 20, test: int = 10) -> Path:
    """The shared CIFAR-10 JPEG container cut to its first `train` / `test` images of each class,
    in its own format, with the shared decoding tool beside it as `decode_cifar10` looks for it
    (`<container>/../../tools/`). debug=tiny trains on 200 images: decoding all 60,000 took a
    quarter of the test's time and changed none of its checks."""
    (out / "data").mkdir(parents=True)
    (out / "tools").mkdir()
    shutil.copy(shared / "tools" / "cifar10_from_jpeg.py", out / "tools")
    arrays = {}
    with np.load(shared / "data" / "cifar10_jpeg.npz") as z:
        for split, per_class in (("train", train), ("test", test)):
            labels, offsets = z[f"{split}_labels"], z[f"{split}_offsets"]
            jpeg = z[f"{split}_jpeg"]
            keep = np.sort(
                np.concatenate([np.flatnonzero(labels == c)[:per_class] for c in range(10)])
            )
            parts = [jpeg[offsets[i] : offsets[i + 1]] for i in keep]
            arrays[f"{split}_jpeg"] = np.concatenate(parts)
            arrays[f"{split}_offsets"] = np.concatenate([[0], np.cumsum([len(b) for b in parts])])
            arrays[f"{split}_labels"] = labels[keep]
            arrays[f"{split}_orig_index"] = z[f"{split}_orig_index"][keep]
    np.savez(out / "data" / "cifar10_jpeg.npz", **arrays)
    return out / "data" / "cifar10_jpeg.npz"


@pytest.mark.slow
def test_tiny_benchmark_end_to_end(tmp_path):
    if not (SHARED / "data" / "cifar10_jpeg.npz").is_file():
        pytest.skip(f"{SHARED}/data is absent: the NB201 benchmark needs its truth and CIFAR-10")
    container = small_container(SHARED, tmp_path / "shared")
    cfg = make_cfg(
        "benchmark_nb201",
        tmp_path,
        [
            f"truth={SHARED / 'data' / 'nb201_cifar10.csv'}",
            f"container={container}",
            f"data.root={tmp_path / 'cifar10'}",
            "predictor.ensemble=2",
            "predictor.epochs=30",
        ],
    )
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        report = run(cfg)
    summary = report["summary"]
    assert summary["params"]["kendall"][0] == pytest.approx(
        0.578, abs=0.001
    )  # the known reference
    assert summary["gcn on supernet acc"]["n"][0] == 15_625
    assert (tmp_path / "benchmark_nb201.json").is_file()
    assert report["decode_s"] > 0 and report["total_s"] > 0


def test_vote_averages_ranks_over_the_archs_all_rankings_score():
    a = {"x": 1.0, "y": 2.0, "z": 3.0, "only_a": 9.0}
    b = {"x": 30.0, "y": 10.0, "z": 20.0}
    assert vote({"a": a, "b": b}) == {"x": 2.0, "y": 1.5, "z": 2.5}  # ranks (1,3), (2,1), (3,2)


def test_refuses_proxies_without_wrcor(tmp_path):
    with pytest.raises(ValueError, match=r"proxies=\['naswot'\]: the report ranks by wrcor"):
        run(make_cfg("benchmark_nb201", tmp_path, ["proxies=[naswot]"]))


def test_skips_without_truth_or_cifar10(tmp_path):
    assert "no truth given" in run(make_cfg("benchmark_nb201", tmp_path))["skipped"]
    truth = tmp_path / "truth.csv"
    truth.write_text("arch,cifar10_test\n")
    cfg = make_cfg("benchmark_nb201", tmp_path, [f"truth={truth}", f"data.root={tmp_path}"])
    assert "no container given" in run(cfg)["skipped"]

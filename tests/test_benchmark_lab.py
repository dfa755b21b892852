"""The supernet ranking lab (`nas-bench-supernet`): its metrics, its fixed arch set, and the tiny
protocol end to end on digits with a synthetic truth (no shared data needed)."""

import csv
import json

import numpy as np
import pytest
from hydra import initialize_config_dir
from omegaconf import open_dict
from scipy.stats import kendalltau

from predictor.benchmarks.lab import E2E_ROWS, auc, is_dead, protocol_archs, run, score_supernet
from supernet.space import NB201Space
from supernet.utils import DataError
from tests.conftest import CONF, make_cfg

SPACE = NB201Space()
DEAD = "|none~0|+|skip_connect~0|none~1|+|none~0|none~1|none~2|"  # nothing reaches the output


def test_dead_cells_are_those_whose_output_is_cut_off():
    assert is_dead(SPACE, SPACE.parse(DEAD))
    live = "|none~0|+|none~0|none~1|+|nor_conv_3x3~0|none~1|none~2|"
    assert not is_dead(SPACE, SPACE.parse(live))


def test_auc_counts_ties_as_half_and_is_undefined_without_both_kinds():
    assert auc(np.array([3.0, 4.0]), np.array([1.0, 2.0])) == 1.0
    assert auc(np.array([1.0]), np.array([1.0, 2.0])) == 0.25
    assert np.isnan(auc(np.array([1.0]), np.array([])))


def test_the_arch_set_is_fixed_by_its_seed_and_holds_the_references():
    a, b = protocol_archs(SPACE, 50, 0), protocol_archs(SPACE, 50, 0)
    assert a == b and a != protocol_archs(SPACE, 50, 1)
    assert len({SPACE.iso_key(x) for x in a[:50]}) == 50  # one per isomorphism class
    assert set(SPACE.default_reference_archs()) <= set(a)


def test_metrics_separate_live_ranking_from_telling_dead_cells_apart():
    rng = np.random.default_rng(0)
    archs = protocol_archs(SPACE, 200, 0)
    names = [SPACE.to_str(a) for a in archs]
    truth = {
        n: 10.0 if is_dead(SPACE, a) else 50 + 40 * rng.random() for n, a in zip(names, archs)
    }
    # a supernet that finds every dead cell but ranks the live ones at random
    acc = {n: 5.0 if truth[n] == 10.0 else 50 + 40 * rng.random() for n in names}
    m = score_supernet(acc, truth, SPACE)
    assert m["n"] == len(names) and m["n_dead"] > 0
    assert m["dead_auc"] == 1.0
    assert abs(m["kendall_live"]) < 0.15  # random among the live archs
    assert m["kendall"] > m["kendall_live"]  # the dead cells (about 6%) lift the whole-set figure
    perfect = score_supernet(truth, truth, SPACE)
    assert perfect["kendall_live"] == pytest.approx(1.0)
    assert perfect["kendall_top10"] == pytest.approx(1.0)


def test_tiny_protocol_end_to_end(tmp_path):
    truth = tmp_path / "truth.csv"  # a made-up truth: bigger cells are better
    rows = (
        f"{SPACE.to_str(a)},{10 + 100 * SPACE.cost(a).params_M:.5f}\n" for a in SPACE.all_archs()
    )
    truth.write_text("arch,cifar10_test\n" + "".join(rows))
    # two made-up zero-shot columns: the arch index and its negation
    features = tmp_path / "zs.csv"
    features.write_text(
        "arch,wrcor,meco\n"
        + "".join(f"{SPACE.to_str(a)},{i},{-i}\n" for i, a in enumerate(SPACE.all_archs()))
    )
    cfg = make_cfg(
        "benchmark_supernet",
        tmp_path / "out",
        [
            "data=digits",
            f"truth={truth}",
            "seeds=[0]",
            "evaluator.num_archs=6",
            "evaluator.heldout_images=100",
            "evaluator.calib_batches=1",
            f"lab.features={features}",
            "gcn.ensemble=1",
            "gcn.epochs=3",
        ],
    )
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        report = run(cfg)
    archs = (tmp_path / "out" / "archs.csv").read_text().split()[1:]
    assert len(archs) == 6 + len(SPACE.default_reference_archs())
    assert report["per_seed"][0]["n"] == len(archs)  # every listed arch evaluated and scored
    saved = json.loads((tmp_path / "out" / "benchmark_supernet.json").read_text())
    assert set(saved["summary"]) >= {"kendall", "kendall_live", "kendall_top10", "dead_auc"}
    assert saved["config"]["trainer"]["max_epochs"] == 1  # debug=tiny wins over the lab's budget
    table = (tmp_path / "out" / "benchmark_supernet.md").read_text()
    assert "| accuracy | 1 | 10 |" in table and "| -loss | 1 | 10 |" in table
    rows = list(csv.DictReader(open(tmp_path / "out" / "seed_0" / "evaluate" / "subnets.csv")))
    true = {a: float(v) for a, v in (r.split(",") for r in truth.read_text().split()[1:])}
    loss, want = zip(*((float(r["loss"]), true[r["arch"]]) for r in rows), strict=True)
    by_loss = saved["by_score"]["loss"]["per_seed"][0]["kendall"]
    assert by_loss == pytest.approx(kendalltau([-x for x in loss], want)[0])  # lower loss ranks up
    # with lab.features, the seed's subnets also go end to end: the ranking benchmark's rows
    e2e = saved["end_to_end"]["per_seed"][0]
    assert set(e2e) == set(E2E_ROWS) and all(-1 <= r["kendall"] <= 1 for r in e2e.values())
    # one seed: no spread
    assert saved["end_to_end"]["summary"]["GCN ensemble"]["kendall"][1] == 0.0
    assert "| fused: GCN + every zero-shot | 1 |" in table
    # an evaluation lever reuses the trained supernet: nothing is trained again
    with open_dict(cfg):
        cfg.lab.trained, cfg.paths.output_dir = str(tmp_path / "out"), str(tmp_path / "bf16")
        cfg.evaluator.bf16 = True
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        again = run(cfg)
    assert not (tmp_path / "bf16" / "seed_0" / "train").exists()
    assert again["per_seed"][0]["n"] == len(archs) and "train" not in again["stage_times_s"][0]
    with open_dict(cfg):
        cfg.seeds = [5]
    with pytest.raises(DataError, match="seed_5"):
        run(cfg)


def test_without_a_truth_the_lab_skips(tmp_path):
    cfg = make_cfg("benchmark_supernet", tmp_path, ["data=digits"])
    assert "skipped" in run(cfg)


def test_a_bad_zero_shot_file_fails_before_any_work(tmp_path):
    truth = tmp_path / "truth.csv"
    truth.write_text(
        "arch,cifar10_test\n" + "".join(f"{SPACE.to_str(a)},50\n" for a in SPACE.all_archs())
    )
    bad = tmp_path / "zs.csv"
    bad.write_text(
        "arch,wrcor\n|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|,1\n"
    )
    overrides = ["data=digits", f"truth={truth}", f"lab.features={bad}"]
    cfg = make_cfg("benchmark_supernet", tmp_path / "out", overrides)
    with pytest.raises(DataError, match="meco"):
        run(cfg)
    assert (
        not (tmp_path / "out" / "archs.csv").exists()
        and not (tmp_path / "out" / "seed_0").exists()
    )

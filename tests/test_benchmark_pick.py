import json
import os
import random
import sys

import pytest

from predictor.benchmarks.pick import (
    ENTRY,
    RNG_OFFSET,
    call,
    commits,
    markdown,
    parse,
    random_archs,
    retrain,
    seed_row,
    summarize,
)
from supernet.space import NB201Space


def test_random_archs_are_the_stated_uniform_draw():
    space = NB201Space()
    archs = random_archs(2, 10)
    rng = random.Random(RNG_OFFSET + 2)
    assert archs == [space.to_str(space.sample(rng)) for _ in range(10)]
    assert all(space.to_str(space.parse(a)) == a for a in archs)
    assert random_archs(2, 10) == archs and random_archs(3, 10) != archs
    assert random_archs(2, 4) == archs[:4]


def test_seed_row_median_and_beats():
    rand = [(f"a{i}", acc) for i, acc in enumerate([10.0, 90.0, 80.0, 85.0])]
    row = seed_row(0, "top", 84.0, rand)
    assert row["random_median"] == 82.5 and row["beats_median"]
    assert not seed_row(0, "top", 82.5, rand)["beats_median"]  # a tie does not beat
    assert row["random_below"] == 2 and seed_row(0, "top", 85.0, rand)["random_below"] == 2.5
    assert [r["acc"] for r in row["random"]] == [10.0, 90.0, 80.0, 85.0]


def test_summary_and_table_from_fake_accuracies():
    rows = [
        seed_row(0, "|a|", 90.0, [("x", 80.0), ("y", 85.0), ("z", 10.0)]),
        seed_row(1, "|b|", 70.0, [("x", 80.0), ("y", 75.0), ("z", 20.0)]),
    ]
    s = summarize(rows)
    assert s["seeds"] == 2 and s["beats"] == 1
    assert s["mean_top1_acc"] == 80.0 and s["mean_random_median"] == 77.5
    assert s["mean_margin"] == 2.5 and (s["random_below"], s["random_archs"]) == (4, 6)
    table = markdown(rows, s)
    lines = table.strip().splitlines()
    assert len(lines) == 2 + 2 + 1
    assert "| 0 | `\\|a\\|` | 90.00 | 10.00, 80.00, 85.00 | 80.00 | yes | 3/3 |" in lines
    assert "| 1 | `\\|b\\|` | 70.00 | 20.00, 75.00, 80.00 | 75.00 | no | 1/3 |" in lines
    tie = markdown([seed_row(2, "c", 80.0, [("x", 80.0)])], s).splitlines()[2]
    assert tie.endswith("| 80.00 | no (tie) | 0.5/1 |")
    assert lines[-1].startswith("| mean |") and "1/2 (margin +2.50) | 4/6 |" in lines[-1]


def test_retrain_reuses_a_finished_result_and_quotes_arch_strings(tmp_path, monkeypatch):
    opts = parse(["--out", str(tmp_path), "--threads", "0"])
    assert parse(["--threads", "2"]).env["OMP_NUM_THREADS"] == "2"
    done = tmp_path / "retrain_0" / "top1"
    done.mkdir(parents=True)
    (done / "retrain.json").write_text(json.dumps({"test_acc": 91.5}))
    calls = []

    def fake_call(args, log, env, tries, wait_s):
        calls.append(args)
        folder = tmp_path / "retrain_0" / "random_00"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "retrain.json").write_text(json.dumps({"test_acc": 50.0}))

    monkeypatch.setattr("predictor.benchmarks.pick.call", fake_call)
    assert retrain(opts, "best_arch.json", 0, "top1") == 91.5 and not calls
    assert retrain(opts, "|none~0|", 0, "random_00") == 50.0
    assert "arch='|none~0|'" in calls[0] and "seed=0" in calls[0]
    assert calls[0][:4] == ["nice", opts.python, "-c", ENTRY["retrain"]]
    assert not any(a.startswith("folds=") for a in calls[0])


def test_folds_go_to_every_retrain_and_a_bad_count_exits_2(tmp_path, monkeypatch, capsys):
    opts = parse(["--out", str(tmp_path), "--threads", "0", "--folds", "5"])
    calls = []

    def fake_call(args, log, env, tries, wait_s):
        calls.append(args)
        folder = tmp_path / "retrain_1" / "top1"
        (folder / "fold-0").mkdir(parents=True)
        (folder / "fold-0" / "train_run.json").write_text(json.dumps({"git": "abc"}))
        (folder / "retrain.json").write_text(json.dumps({"test_acc": 97.5}))

    monkeypatch.setattr("predictor.benchmarks.pick.call", fake_call)
    assert retrain(opts, "best_arch.json", 1, "top1") == 97.5
    assert calls[0][-2:] == ["folds=5", f"hydra.run.dir={tmp_path / 'retrain_1' / 'top1'}"]
    assert commits(tmp_path, 1) == ["abc"]  # the fold's record (no main job here)
    with pytest.raises(SystemExit) as err:
        parse(["--folds", "0"])
    assert err.value.code == 2 and "--folds 0: expected 1" in capsys.readouterr().err


def test_call_retries_then_raises(tmp_path):
    args = [sys.executable, "-c", "import sys; sys.exit(3)"]
    with pytest.raises(RuntimeError, match="failed 2 times"):
        call(args, tmp_path / "x.log", dict(os.environ), tries=2, wait_s=0)
    call([sys.executable, "-c", "pass"], tmp_path / "y.log", dict(os.environ), tries=1, wait_s=0)


def test_commits_of_a_seed(tmp_path):
    (tmp_path / "run_0").mkdir()
    (tmp_path / "run_0" / "best_arch.json").write_text(json.dumps({"git": "abc"}))
    for name, git in [("top1", "def+dirty"), ("random_00", "abc")]:
        (tmp_path / "retrain_0" / name).mkdir(parents=True)
        (tmp_path / "retrain_0" / name / "train_run.json").write_text(json.dumps({"git": git}))
    assert commits(tmp_path, 0) == ["abc", "def+dirty"]

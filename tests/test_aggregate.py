"""A multirun's summary: mean ± std of each stage's metrics over the sweep's jobs, at its root."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from predictor.aggregate import SUMMARY_JSON, SUMMARY_MD, job_folders, write_summary

ROOT = Path(__file__).resolve().parents[1]


def fake_job(root: Path, num: int, seed: int, acc: float, tau: float) -> Path:
    """A job folder as a pipeline job leaves it: Hydra's record, Lightning's CSV, fit.json,
    evaluate's run record and subnets CSV, query's run record."""
    job = root / str(num)
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(f"- seed={seed}\n")
    (job / "csv").mkdir()
    (job / "csv" / "metrics.csv").write_text(
        f"epoch,step,train/loss,val/acc\n0,9,2.0,\n0,9,,10.0\n1,19,1.5,\n1,19,,{acc}\n"
    )
    metrics = {"fit/train_tau": tau, "fit/heldout_tau": float("nan"), "fit/vote_with": ["x"]}
    (job / "fit.json").write_text(json.dumps({"metrics": metrics, "git": "abc"}))
    subnets = job / "subnets.csv"
    subnets.write_text(f"arch,acc\na,{acc - 1}\nb,{acc + 1}\n")
    (job / "evaluate_run.json").write_text(
        json.dumps({"stage": "evaluate", "config": {"out": str(subnets)}, "checkpoint": {"n": 1}})
    )
    top = [{"arch": "a", "score": acc / 10, "flops_M": 1.5, "live_conv": True}]
    (job / "query_run.json").write_text(
        json.dumps({"stage": "query", "git": "abc", "top": top, "num_meeting": 7, "config": {}})
    )
    (job / "train_run.json").write_text(json.dumps({"stage": "train", "config": {"seed": seed}}))
    return job


def test_summary_of_fabricated_jobs(tmp_path: Path) -> None:
    accs, taus = [80.0, 84.0, 85.0], [0.5, 0.7, 0.6]
    for num, (acc, tau) in enumerate(zip(accs, taus)):
        fake_job(tmp_path, num, seed=num, acc=acc, tau=tau)
    summary = write_summary(tmp_path)
    assert list(summary["stages"]) == ["train", "evaluate", "fit", "query"]  # pipeline order
    acc = summary["stages"]["train"]["val/acc"]
    assert acc["values"] == accs and acc["n"] == 3
    assert acc["mean"] == pytest.approx(statistics.fmean(accs))
    assert acc["std"] == pytest.approx(statistics.stdev(accs))
    assert "epoch" not in summary["stages"]["train"]  # counters are not metrics
    assert summary["stages"]["train"]["train/loss"]["mean"] == 1.5  # the last logged value
    fit = summary["stages"]["fit"]
    assert fit["fit/train_tau"]["mean"] == pytest.approx(0.6)
    assert "fit/heldout_tau" not in fit and "fit/vote_with" not in fit  # NaN and lists left out
    assert summary["stages"]["evaluate"]["subnets/acc_mean"]["values"] == accs
    assert summary["stages"]["evaluate"]["subnets/num"]["std"] == 0.0
    query = summary["stages"]["query"]
    assert query["num_meeting"]["mean"] == 7 and query["best/score"]["values"] == [8.0, 8.4, 8.5]
    assert "best/live_conv" not in query  # booleans are not metrics
    assert [j["overrides"] for j in summary["jobs"]] == [["seed=0"], ["seed=1"], ["seed=2"]]
    assert json.loads((tmp_path / SUMMARY_JSON).read_text()) == summary
    md = (tmp_path / SUMMARY_MD).read_text()
    assert "## train" in md and f"| val/acc | {statistics.fmean(accs):.4g} ± " in md
    assert "`2`: seed=2" in md


def test_jobs_in_numeric_order_and_nothing_written_without_metrics(tmp_path: Path) -> None:
    for num in (10, 2, 1):
        (tmp_path / str(num) / ".hydra").mkdir(parents=True)
        (tmp_path / str(num) / ".hydra" / "overrides.yaml").write_text("[]\n")
    assert [p.name for p in job_folders(tmp_path)] == ["1", "2", "10"]
    summary = write_summary(tmp_path)
    assert summary["stages"] == {} and not (tmp_path / SUMMARY_JSON).exists()


def test_one_job_has_zero_std_and_a_stage_missing_in_a_job_counts_the_others(
    tmp_path: Path,
) -> None:
    fake_job(tmp_path, 0, seed=0, acc=80.0, tau=0.5)
    job = fake_job(tmp_path, 1, seed=1, acc=90.0, tau=0.7)
    (job / "fit.json").unlink()
    stages = write_summary(tmp_path)["stages"]
    assert stages["fit"]["fit/train_tau"] == {"mean": 0.5, "std": 0.0, "n": 1, "values": [0.5]}
    assert stages["train"]["val/acc"]["n"] == 2


@pytest.mark.slow
def test_real_multirun_over_two_seeds_writes_one_summary(tmp_path: Path) -> None:
    """`scripts/train.py -m seed=0,1` in a folder of its own, with Hydra's default sweep folder
    (its `${now:...}` name must be the jobs' folder when the summary is written). Also the sweep
    itself (was tests/test_ddp.py's own multirun): two seeds, two different supernets."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "train.py"), "-m", "debug=tiny", "seed=0,1"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (sweep,) = (tmp_path / "multirun" / "train").iterdir()
    summary = json.loads((sweep / SUMMARY_JSON).read_text())
    assert [j["overrides"] for j in summary["jobs"]] == [
        ["debug=tiny", "seed=0"],
        ["debug=tiny", "seed=1"],
    ]
    acc = summary["stages"]["train"]["val/acc"]
    assert acc["n"] == 2 and acc["std"] == pytest.approx(statistics.stdev(acc["values"]))
    assert "## train" in (sweep / SUMMARY_MD).read_text()
    a, b = (
        torch.load(sweep / str(k) / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
        for k in (0, 1)
    )
    assert not all(torch.equal(a[k], b[k]) for k in a)  # two seeds, two different supernets

"""The optional ecosystem with its packages actually installed: `logger=mlflow`, `logger=wandb`
(offline) and the Optuna `hparams_search` configs, each run on the tiny preset as a user would run
it (a subprocess of scripts/*.py), then read back.

Every test skips, naming the pip command, where its package is absent (the main venv and CI);
tests/test_ecosystem.py covers that side. Run them in a venv that has the extras:
    pip install -e '.[dev,mlflow,wandb,optuna]'
    pytest tests/test_ecosystem_installed.py
Last passed with wandb 0.31.0, mlflow 3.17.2, hydra-optuna-sweeper 1.3.0 + optuna 2.10.1
(SQLAlchemy 1.4.54, alembic 1.19.2), hydra-core 1.3.8, pytorch-lightning 2.6.6, torch 2.13.0+cpu.
"""

from __future__ import annotations

import json
import math
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.conftest import CONF, ROOT

pytestmark = pytest.mark.slow

TRAIN_METRICS = {"val/acc", "train/loss_epoch", "train/loss_step", "lr-SGD"}
SEARCHES = sorted(p.stem for p in (CONF / "hparams_search").glob("*.yaml"))
TINY_FIT = ["predictor.epochs=2", "predictor.ensemble=1"]  # the searched keys stay searched


def need(module: str, extra: str) -> None:
    pytest.importorskip(module, reason=f"{module} is absent (pip install 'oneshot-nas[{extra}]')")


def run_script(script: str, args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    """`python scripts/<script> args...` in `cwd`, with `env` added (and no tracking server of
    the caller's: MLFLOW_TRACKING_URI and WANDB_MODE are dropped unless given)."""
    base = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "WANDB_MODE")}
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / script), *args],
        cwd=cwd,
        env={**base, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_mlflow_logger_writes_metrics_and_params_to_the_output_folder(tmp_path):
    need("mlflow", "mlflow")
    from mlflow import MlflowClient

    out = tmp_path / "out"
    proc = run_script(
        "train.py", ["debug=tiny", "logger=mlflow", f"hydra.run.dir={out}"], tmp_path
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    store = out / "mlflow.db"  # conf/logger/mlflow.yaml: SQLite in the output folder
    assert store.is_file()
    assert not (tmp_path / "mlruns").exists()  # nothing in the folder it was launched from
    client = MlflowClient(f"sqlite:///{store}")
    experiment = client.get_experiment_by_name("oneshot-nas")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    assert TRAIN_METRICS <= set(run.data.metrics), sorted(run.data.metrics)
    assert 0 <= run.data.metrics["val/acc"] <= 100
    history = client.get_metric_history(run.info.run_id, "train/loss_step")
    assert len(history) >= 3 and all(math.isfinite(m.value) for m in history)  # every step
    assert {"optimizer/lr", "grad_clip"} <= set(run.data.params), sorted(run.data.params)
    record = json.loads((out / "train_run.json").read_text())
    assert record["config"]["logger"]["mlflow"]["tracking_uri"] == f"sqlite:///{store}"


def wandb_records(run_dir: Path) -> list:
    """The records of an offline run's `run-<id>.wandb` (a LevelDB-style log: a 7-byte file
    header, then 32 KiB blocks of chunks, each with a 7-byte header: CRC, length, type), parsed
    with wandb's own protobuf. wandb no longer ships a reader of its own."""
    pb = pytest.importorskip("wandb.proto.wandb_internal_pb2", reason="wandb's record protobuf")
    (path,) = run_dir.glob("run-*.wandb")
    data = path.read_bytes()
    assert data[:4] == b":W&B"
    block, pos, chunks, records = 32768, 7, [], []
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a header is padding
            pos += block - pos % block
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if kind == 0:
            break
        chunks.append(data[pos + 7 : pos + 7 + length])
        pos += 7 + length
        if kind in (1, 4):  # a whole record, or the last chunk of one
            record = pb.Record()
            record.ParseFromString(b"".join(chunks))
            records.append(record)
            chunks = []
    return records


def wandb_summary(run_dir: Path) -> dict[str, float]:
    summary = {}
    for record in wandb_records(run_dir):
        if record.WhichOneof("record_type") == "summary":
            for item in record.summary.update:
                summary[item.key or "/".join(item.nested_key)] = json.loads(item.value_json)
    return summary


def test_wandb_offline_writes_one_run_per_job_with_the_metrics(tmp_path):
    """A multirun of two seeds: each job its own offline run (Lightning's WandbLogger would join
    the first job's run; supernet.cli.finish_wandb_run ends each)."""
    need("wandb", "wandb")
    sweep = tmp_path / "sweep"
    args = ["-m", "debug=tiny", "logger=wandb", "seed=0,1", f"hydra.sweep.dir={sweep}"]
    proc = run_script("train.py", args, tmp_path, WANDB_MODE="offline", WANDB_SILENT="true")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "already in progress" not in proc.stdout + proc.stderr
    runs = [sorted((sweep / job / "wandb").glob("offline-run-*")) for job in ("0", "1")]
    assert [len(r) for r in runs] == [1, 1], runs
    summaries = [wandb_summary(r[0]) for r in runs]
    for summary in summaries:
        assert TRAIN_METRICS <= set(summary), sorted(summary)
        assert summary["trainer/global_step"] > 0
    assert runs[0][0].name.rsplit("-", 1)[1] != runs[1][0].name.rsplit("-", 1)[1]  # run ids


def write_samples(path: Path, n: int) -> Path:
    """`n` NB201 archs with a made-up accuracy that rises with 3x3 convolutions."""
    from supernet.space import NB201Space

    space, rng = NB201Space(), np.random.default_rng(0)
    with open(path, "w") as f:
        f.write("arch,acc\n")
        for i in rng.choice(space.size, n, replace=False):
            arch = space.from_index(int(i))
            f.write(f"{space.to_str(arch)},{60 + 5 * arch.count(3) + rng.normal():.3f}\n")
    return path


def search_command(search: str, tmp_path: Path, rows: int = 60) -> tuple[str, list[str]]:
    if search == "supernet_optuna":
        return "train.py", []
    return "fit.py", [f"samples={write_samples(tmp_path / 'samples.csv', rows)}", *TINY_FIT]


@pytest.mark.parametrize("search", SEARCHES)
def test_optuna_search_runs_trials_and_summarises_them(search, tmp_path):
    need("hydra_plugins.hydra_optuna_sweeper", "optuna")
    script, args = search_command(search, tmp_path)
    sweep = tmp_path / "sweep"
    args += [f"hparams_search={search}", "debug=tiny", "hydra.sweeper.n_trials=2"]
    proc = run_script(script, [*args, f"hydra.sweep.dir={sweep}"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "setup plugin" not in proc.stdout + proc.stderr  # alembic's INFO lines, silenced
    metric = yaml.safe_load((CONF / "hparams_search" / f"{search}.yaml").read_text())[
        "optimized_metric"
    ]
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert best["name"] == "optuna" and math.isfinite(best["best_value"]) and best["best_params"]
    assert (sweep / "0").is_dir() and (sweep / "1").is_dir()
    summary = json.loads((sweep / "multirun_summary.json").read_text())
    assert [j["dir"] for j in summary["jobs"]] == ["0", "1"]
    objective = summary["objective"]
    assert objective["metric"] == metric and objective["direction"] == "maximize"
    assert set(objective["values"]) == {"0", "1"}
    assert objective["values"][objective["best"]] == pytest.approx(best["best_value"])
    stage = "train" if script == "train.py" else "fit"
    assert metric in summary["stages"][stage] and summary["stages"][stage][metric]["n"] == 2
    markdown = (sweep / "multirun_summary.md").read_text()
    assert f"## objective: {metric} (maximize)" in markdown and "(best)" in markdown


def test_optuna_nan_objective_fails_the_trial_not_the_sweep(tmp_path):
    """12 rows: every member's held-out tau is NaN. Each trial is marked failed and the next one
    runs (hydra-optuna-sweeper 1.3.0 stopped at the first NaN, telling Optuna a failed trial's
    value); with no trial completed, Optuna has no best one and the sweep ends in that error."""
    need("hydra_plugins.hydra_optuna_sweeper", "optuna")
    script, args = search_command("predictor_optuna", tmp_path, rows=12)
    sweep = tmp_path / "sweep"
    args += ["hparams_search=predictor_optuna", "debug=tiny", "hydra.sweeper.n_trials=2"]
    proc = run_script(script, [*args, f"hydra.sweep.dir={sweep}"], tmp_path)
    log = proc.stdout + proc.stderr
    assert log.count("optimized_metric=fit/heldout_tau is NaN: this trial counts as failed") == 2
    assert "Values cannot be specified" not in log
    assert (sweep / "1" / "fit.json").is_file()  # the second trial ran
    assert proc.returncode != 0 and "No trials are completed yet" in log


def test_optuna_study_in_sqlite_storage_resumes(tmp_path):
    """`hydra.sweeper.storage=sqlite:///...` (supernet_optuna.yaml's comment): a second sweep adds
    its trials to the same study. optuna 2.10's RDB storage fails on SQLAlchemy 2, which the
    optuna extra therefore excludes."""
    need("hydra_plugins.hydra_optuna_sweeper", "optuna")
    import optuna

    db = f"sqlite:///{tmp_path / 'optuna.db'}"
    script, args = search_command("predictor_optuna", tmp_path)
    args += ["hparams_search=predictor_optuna", "debug=tiny", "hydra.sweeper.n_trials=1"]
    for num in (0, 1):
        sweep = f"hydra.sweep.dir={tmp_path / f'sweep{num}'}"
        proc = run_script(script, [*args, f"hydra.sweeper.storage={db}", sweep], tmp_path)
        assert proc.returncode == 0, proc.stderr[-3000:]
    study = optuna.load_study(study_name="predictor", storage=db)
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE"]

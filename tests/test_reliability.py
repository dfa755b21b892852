"""Faults and bad inputs (issue 13): no code from a file, no lost data, no silent wrong result,
and every refusal names the bad value (exit 2 from the entry points)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch

from predictor.io import read_samples, read_table
from predictor.stages import fit, query
from predictor.stages import search as search_script
from predictor.table import load_checkpoint, read_checkpoint
from supernet import evaluator
from supernet.data import load_cifar10
from supernet.module import load_supernet
from supernet.results import ResultsCSV
from supernet.space import ChainSpace, NB201Space
from supernet.stages import evaluate as evaluate_script
from supernet.stages.evaluate import run as evaluate
from supernet.stages.retrain import arch_string
from supernet.stages.train import run as train
from supernet.utils import DataError, _writer_tag, atomic_write_bytes, load_checkpoint_file
from tests.conftest import make_cfg

ROOT = Path(__file__).resolve().parents[1]
SPACE = NB201Space()
GOOD = SPACE.to_str((3, 3, 3, 1, 3, 2))


class Payload:
    """Pickles to a call that creates `marker`: what a crafted checkpoint can hide."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def evil_checkpoint(path: Path, marker: Path) -> Path:
    torch.save({"nas": Payload(marker), "predictor": Payload(marker), "space": "nb201"}, path)
    return path


def samples_csv(path: Path, n: int = 40) -> Path:
    rng = np.random.default_rng(0)
    lines = ["arch,acc"]
    for i in rng.choice(SPACE.size, n, replace=False):
        arch = SPACE.from_index(int(i))
        lines.append(f"{SPACE.to_str(arch)},{60 + 5 * arch.count(3) + rng.normal():.3f}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> str:
    return train(make_cfg("train", tmp_path_factory.mktemp("train")))["ckpt_path"]


# ---- security: checkpoints load with weights_only=True ----------------------------------------


def test_crafted_checkpoint_runs_nothing_in_library_loaders(tmp_path):
    marker = tmp_path / "pwned"
    evil = evil_checkpoint(tmp_path / "evil.ckpt", marker)
    for load in (load_supernet, read_checkpoint, lambda p: load_checkpoint(p, SPACE)):
        with pytest.raises(DataError, match=r"evil\.ckpt .*pickle.*refused"):
            load(evil)
    assert not marker.exists()


def test_predictor_checkpoint_space_is_never_instantiated_from_the_file(tmp_path):
    """The space comes from a name -> class registry; a class path stored in the file (Hydra's
    `_target_`) is plain data that nothing calls."""
    marker = tmp_path / "pwned"
    crafted = {  # instantiating this config creates the marker file
        "predictor": {"kind": "ridge"},
        "space": "nb201",
        "config": {"space": {"_target_": "logging.FileHandler", "filename": str(marker)}},
    }
    torch.save(crafted, tmp_path / "p.ckpt")
    cfg = make_cfg("search", tmp_path, [f"checkpoint={tmp_path / 'p.ckpt'}"])
    with pytest.raises(DataError):
        search_script.load_predictor(cfg, NB201Space(C=4, N=1))
    assert not marker.exists()


@pytest.mark.slow
@pytest.mark.parametrize("script", ["evaluate.py ckpt_path", "search.py checkpoint"])
def test_crafted_checkpoint_is_refused_by_the_entry_points(tmp_path, script):
    marker = tmp_path / "pwned"
    evil = evil_checkpoint(tmp_path / "evil.ckpt", marker)
    name, key = script.split()
    proc = subprocess.run(
        [sys.executable, f"scripts/{name}", f"{key}={evil}", "debug=tiny"]
        + [f"hydra.run.dir={tmp_path / 'run'}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "evil.ckpt" in proc.stderr and "pickle" in proc.stderr
    assert not marker.exists()


@pytest.mark.parametrize("damage", ["truncated", "empty", "text"])
def test_damaged_checkpoints_are_named_as_incomplete(tmp_path, ckpt, damage):
    data = Path(ckpt).read_bytes()
    bad = tmp_path / f"{damage}.ckpt"
    bad.write_bytes(
        {"truncated": data[: len(data) // 2], "empty": b"", "text": b"hello\n"}[damage]
    )
    with pytest.raises(DataError, match=rf"{damage}\.ckpt is not a complete checkpoint"):
        load_supernet(bad)
    with pytest.raises(DataError, match="not a complete checkpoint"):
        load_checkpoint_file(bad)


def test_fitted_predictor_checkpoint_loads_without_pickle(tmp_path):
    samples = samples_csv(tmp_path / "s.csv")
    out = fit.run(
        make_cfg("fit", tmp_path / "out", [f"samples={samples}", "predictor=ridge"], tiny=False)
    )
    ckpt = torch.load(out["checkpoint"], weights_only=True)  # plain data and tensors only
    fitted_on = NB201Space(N=1).config()  # digits' recipe: 1 cell per stage
    assert ckpt["space_config"] == fitted_on
    assert read_checkpoint(out["checkpoint"])[1].config() == fitted_on


# ---- data loss ---------------------------------------------------------------------------------


def test_results_csv_never_modifies_a_file_that_is_not_its_own(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_bytes(b"my notes, no final newline")
    with pytest.raises(DataError, match="not a results file"):
        ResultsCSV(notes, ["arch", "acc"])
    assert notes.read_bytes() == b"my notes, no final newline"


def test_results_csv_refuses_a_second_writer_and_non_utf8(tmp_path):
    path = tmp_path / "r.csv"
    first = ResultsCSV(path, ["arch", "acc"])
    with pytest.raises(DataError, match="being written by another process"):
        ResultsCSV(path, ["arch", "acc"])
    first.append({"arch": "a", "acc": 1})
    first.close()
    assert len(ResultsCSV(path, ["arch", "acc"])) == 1  # released: a rerun reads it
    path.write_bytes(b"arch,acc\na,1\n\xff\xfe,2\n")
    with pytest.raises(DataError, match=r":3: bytes .* not UTF-8"):
        ResultsCSV(path, ["arch", "acc"])


def test_concurrent_evaluation_is_refused_not_duplicated(tmp_path, ckpt):
    out = tmp_path / "subnets.csv"
    holder = ResultsCSV(out, ["arch"])  # another writer of the file, in effect
    cfg = make_cfg(
        "evaluate", tmp_path, [f"ckpt_path={ckpt}", "evaluator.num_archs=2", f"out={out}"]
    )
    with pytest.raises(DataError, match="being written by another process"):
        evaluate(cfg)
    holder.close()


def test_atomic_writes_respect_the_umask_and_clean_leftovers(tmp_path):
    old = os.umask(0o022)
    try:
        path = atomic_write_bytes(tmp_path / "t.csv", b"x\n")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644
    dead = subprocess.Popen(["true"])
    dead.wait()
    host = _writer_tag().split("-", 1)[1]
    leftover = tmp_path / f".t.csv.{dead.pid}-{host}.abc123.tmp"  # a writer killed mid-write
    leftover.write_bytes(b"half")
    old_style = tmp_path / ".t.csv.k9x_2ab.tmp"
    old_style.write_bytes(b"half")
    os.utime(old_style, (1, 1))
    mine = tmp_path / f".t.csv.{_writer_tag()}.live.tmp"  # a live writer's: kept
    mine.write_bytes(b"busy")
    remote = tmp_path / f".t.csv.{dead.pid}-otherhost.abc.tmp"  # maybe live on another host
    remote.write_bytes(b"busy")
    atomic_write_bytes(tmp_path / "t.csv", b"y\n")
    assert not leftover.exists() and not old_style.exists()
    assert mine.exists() and remote.exists()


def test_fit_validates_before_writing(tmp_path):
    samples = samples_csv(tmp_path / "s.csv")
    out = tmp_path / "out"
    bad_latency = tmp_path / "lat.json"
    bad_latency.write_text("{}")
    cfg = make_cfg(
        "fit",
        out,
        [f"samples={samples}", "predictor=ridge", f"latency_table={bad_latency}"],
        tiny=False,
    )
    with pytest.raises(DataError, match="latency_table="):
        fit.run(cfg)
    assert not (out / "predictor.ckpt").exists()
    blocker = tmp_path / "file"
    blocker.write_text("")
    cfg = make_cfg(
        "fit",
        out,
        [f"samples={samples}", "predictor=ridge", f"table={blocker / 't.csv'}"],
        tiny=False,
    )
    with pytest.raises(DataError, match="cannot make its folder"):
        fit.run(cfg)
    assert not (out / "predictor.ckpt").exists()


@pytest.mark.slow
def test_fit_killed_while_writing_leaves_no_record_of_another_run(tmp_path):
    """SIGKILL right after the new table is written: the old fit.json must not sit beside it."""
    old = samples_csv(tmp_path / "old.csv", n=30)
    new = samples_csv(tmp_path / "new.csv", n=50)
    common = ["predictor=ridge", f"paths.output_dir={tmp_path / 'out'}"]
    fit.run(make_cfg("fit", tmp_path / "out", [f"samples={old}", *common], tiny=False))
    record = tmp_path / "out" / "fit.json"
    assert json.loads(record.read_text())["samples_sha256"]
    code = f"""
import os, signal, sys
from predictor.stages import fit
from tests.conftest import make_cfg
write = fit.write_table
def write_then_die(*a, **k):
    write(*a, **k)
    os.kill(os.getpid(), signal.SIGKILL)
fit.write_table = write_then_die
fit.run(make_cfg("fit", __import__("pathlib").Path({str(tmp_path / "out")!r}),
                 ["samples={new}", "predictor=ridge"], tiny=False))
"""
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, timeout=300)
    assert proc.returncode == -signal.SIGKILL
    assert (tmp_path / "out" / "table.csv").stat().st_mtime > (
        tmp_path / "new.csv"
    ).stat().st_mtime
    assert not record.exists()


# ---- silent wrong results ----------------------------------------------------------------------


def test_subnets_csv_refuses_rows_of_other_accuracy_settings(tmp_path, ckpt):
    common = [f"ckpt_path={ckpt}", "evaluator.heldout_images=50", "evaluator.calib_batches=2"]
    evaluate(make_cfg("evaluate", tmp_path, [*common, "evaluator.num_archs=2"]))
    for other, column in (
        ("evaluator.heldout_images=40", "heldout_images"),
        ("evaluator.calib_batches=1", "calib_batches"),
        ("data.eval_batch_size=10", "data"),
    ):
        with pytest.raises(DataError, match=column):
            evaluate(make_cfg("evaluate", tmp_path, [*common, other, "evaluator.num_archs=3"]))
    assert len(evaluate(make_cfg("evaluate", tmp_path, [*common, "evaluator.num_archs=3"]))["out"])


@pytest.mark.parametrize(
    "override",
    [
        "evaluator.num_archs=0",
        "evaluator.num_archs=-1",
        "evaluator.num_archs=abc",
        "evaluator.heldout_images=-1",
        "evaluator.calib_batches=0",
        "data.batch_size=0",
    ],
)
def test_evaluate_refuses_non_positive_counts(tmp_path, ckpt, override, monkeypatch):
    def measured(*args):  # num_archs=0 used to mean every arch: fail at once, not after 15,625
        raise AssertionError(f"{override} was accepted: a subnet was evaluated")

    monkeypatch.setattr(evaluate_script.SubnetEvaluator, "evaluate", measured)
    key, value = override.split("=")
    with pytest.raises(DataError, match=rf"{re.escape(key)}='?{value}'?: expected an integer"):
        evaluate(make_cfg("evaluate", tmp_path, [f"ckpt_path={ckpt}", override]))
    assert not (tmp_path / "subnets.csv").exists()


def test_evaluate_out_under_a_file_is_named(tmp_path, ckpt):
    (tmp_path / "f").write_text("")
    with pytest.raises(DataError, match="cannot write results file"):
        evaluate(
            make_cfg(
                "evaluate", tmp_path, [f"ckpt_path={ckpt}", f"out={tmp_path / 'f' / 's.csv'}"]
            )
        )


def test_choose_archs_refuses_more_archs_than_the_space_has(monkeypatch):
    monkeypatch.setattr(SPACE, "max_enumerate", 100)  # NB201 counts as too large to list
    signal.signal(signal.SIGALRM, lambda *a: pytest.fail("choose_archs did not return"))
    signal.alarm(20)
    try:
        with pytest.raises(ValueError, match="only 15625 archs"):
            evaluator.choose_archs(SPACE, "uniform", SPACE.size + 1, 0)
    finally:
        signal.alarm(0)


def test_query_refuses_top_k_below_one_and_a_cut_table(tmp_path):
    samples = samples_csv(tmp_path / "s.csv")
    out = fit.run(
        make_cfg("fit", tmp_path / "out", [f"samples={samples}", "predictor=ridge"], tiny=False)
    )
    table = Path(out["table"])
    for k in (0, -3):
        cfg = make_cfg("query", tmp_path / "q", [f"table={table}", f"top_k={k}"], tiny=False)
        with pytest.raises(DataError, match=f"top_k={k}"):
            query.run(cfg)
    data = table.read_bytes()
    cut_at_line = tmp_path / "cut.csv"
    cut_at_line.write_bytes(data[: data.index(b"\n", 50_000) + 1])
    cut_mid_line = tmp_path / "mid.csv"
    cut_mid_line.write_bytes(data[:50_000])
    for cut, why in ((cut_at_line, "has one row per arch"), (cut_mid_line, "cut off")):
        cfg = make_cfg("query", tmp_path / "q", [f"table={cut}"], tiny=False)
        with pytest.raises(DataError, match=why):
            query.run(cfg)


def test_two_columns_of_one_name_and_non_utf8_fields_are_refused(tmp_path):
    two = tmp_path / "two.csv"
    two.write_text(f"arch,acc,acc\n{GOOD},50,90\n")
    with pytest.raises(DataError, match=r"\['acc'\] appear more than once"):
        read_samples(two, SPACE)
    binary = tmp_path / "bin.csv"
    binary.write_bytes(f"arch,acc\n{GOOD},50\n".encode() + b"\xff\xfe,1\n")
    with pytest.raises(DataError, match=r"bin\.csv:3: bytes"):
        read_samples(binary, SPACE)
    huge = tmp_path / "huge.csv"
    huge.write_text(f"arch,acc\n{GOOD},{'9' * 200_000}\n")
    with pytest.raises(DataError, match=r"huge\.csv"):
        read_table(huge, "acc")


# ---- unclear errors ----------------------------------------------------------------------------


def test_retrain_json_without_arch_is_named(tmp_path):
    path = tmp_path / "best_arch.json"
    path.write_text(json.dumps({"score": 1}))
    with pytest.raises(DataError, match=r"best_arch\.json: no string field 'arch'"):
        arch_string(str(path))


def test_look_alike_op_names_are_shown_escaped():
    fake = GOOD.replace("nor_conv_1x1", "nor_\u0441onv_1x1")  # Cyrillic es
    with pytest.raises(ValueError, match=r"nor_\\u0441onv_1x1"):
        SPACE.parse(fake)
    with pytest.raises(ValueError, match=r"malformed arch string .*\\u2223"):  # a divides sign
        SPACE.parse(GOOD.replace("|", "\u2223", 1))
    chain = ChainSpace()
    good = chain.to_str(chain.from_index(0))
    with pytest.raises(ValueError, match=r"unknown op 'ir_k3_\\u0435\d'"):  # Cyrillic ie
        chain.parse(good.replace("_e", "_\u0435", 1))
    with pytest.raises(ValueError, match=r"malformed arch string .*\\u2223"):
        chain.parse(good.replace("|", "\u2223", 1))


# ---- training: resume, signals, logs -----------------------------------------------------------


class SigtermAfterFirstEpoch(pl.Callback):
    """What SLURM does at a time limit: SIGTERM to the training process."""

    def on_train_epoch_end(self, trainer, pl_module):
        if trainer.current_epoch == 0:
            os.kill(os.getpid(), signal.SIGTERM)


def test_sigterm_exits_nonzero_then_resume_in_place_keeps_the_log(tmp_path, capsys):
    over = ["trainer.max_epochs=2"]
    with pytest.raises(SystemExit) as stop:
        train(make_cfg("train", tmp_path, over), [SigtermAfterFirstEpoch()])
    assert stop.value.code == 143
    last = tmp_path / "checkpoints" / "last.ckpt"
    assert f"resume with ckpt_path={last}" in capsys.readouterr().err
    first_log = (tmp_path / "csv" / "metrics.csv").read_text()
    train(make_cfg("train", tmp_path, [*over, f"ckpt_path={last}"]))  # in the same folder
    assert (tmp_path / "csv" / "metrics.1.csv").read_text() == first_log
    assert "val/acc" in (tmp_path / "csv" / "metrics.csv").read_text()


def test_resume_with_more_epochs_is_refused_not_trained_at_lr_0(tmp_path, ckpt):
    cfg = make_cfg("train", tmp_path, [f"ckpt_path={ckpt}", "trainer.max_epochs=3"])
    with pytest.raises(DataError, match=r"T_max=1 .*Resume with trainer.max_epochs=1"):
        train(cfg)
    assert not (tmp_path / "checkpoints" / "last.ckpt").exists()


class NoTraining(pl.Callback):
    """-1 is Lightning's "train for ever": fail at once instead."""

    def on_train_epoch_start(self, trainer, pl_module):
        raise AssertionError("training started")


@pytest.mark.parametrize("epochs", [0, -1])
def test_max_epochs_below_one_is_refused(tmp_path, epochs):
    with pytest.raises(DataError, match=f"trainer.max_epochs={epochs}"):
        train(make_cfg("train", tmp_path, [f"trainer.max_epochs={epochs}"]), [NoTraining()])


def test_resume_from_a_damaged_checkpoint_is_named(tmp_path, ckpt):
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(Path(ckpt).read_bytes()[:1000])
    with pytest.raises(DataError, match=r"bad\.ckpt is not a complete checkpoint"):
        train(make_cfg("train", tmp_path, [f"ckpt_path={bad}"]))


def test_non_numeric_budgets_and_bad_search_counts_are_named(tmp_path):
    table = tmp_path / "t.csv"
    table.write_text(f"arch,score,flops_M,params_M\n{GOOD},1,2,3\n")
    cfg = make_cfg("query", tmp_path, [f"table={table}", "max_flops_M=abc"], tiny=False)
    with pytest.raises(DataError, match="max_flops_M='abc': expected a finite number"):
        query.run(cfg)
    for bad in ("search.population=0", "search.generations=-1", "top_k=0", "max_params_M=lots"):
        cfg = make_cfg("search", tmp_path, ["checkpoint=none.ckpt", bad])
        with pytest.raises(DataError, match=bad.split("=")[0]):
            search_script.run(cfg)


def test_dataset_labels_out_of_range_name_the_file_and_label(tmp_path):
    x = np.zeros((4, 32, 32, 3), dtype=np.uint8)
    np.savez(tmp_path / "train.npz", x=x, y=np.array([0, 1, 10, 2]))
    np.savez(tmp_path / "test.npz", x=x, y=np.array([0, 1, 2, 3]))
    with pytest.raises(
        DataError, match=r"train\.npz: label y\[2\]=10 .*expected class indices 0\.\.9"
    ):
        load_cifar10(tmp_path)


@pytest.mark.slow
def test_evaluate_merge_with_a_missing_shard_exits_2(tmp_path):
    proc = subprocess.run(
        [sys.executable, "scripts/evaluate.py", "ckpt_path=x", "merge=true", "num_shards=2"]
        + [f"out={tmp_path / 's.csv'}", f"hydra.run.dir={tmp_path / 'run'}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2 and "shard-0-of-2" in proc.stderr, proc.stderr[-2000:]

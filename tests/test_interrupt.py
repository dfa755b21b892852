"""Ctrl-C during training (issue 13): the interrupted epoch's progress is saved, the run exits 130
naming the checkpoint, and resuming from it ends where a straight run ends. Also: `save_top_k`
holds across resumes."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from supernet.stages.train import run as train
from tests.conftest import make_cfg, signal_when

EPOCHS = ["trainer.max_epochs=2", "trainer.deterministic=true"]


class CtrlCInEpoch(pl.Callback):
    """Sends SIGINT to this process in the middle of epoch `epoch`, as Ctrl-C would."""

    def __init__(self, epoch: int = 1, batch: int = 0) -> None:
        self.epoch, self.batch = epoch, batch

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.current_epoch == self.epoch and batch_idx == self.batch:
            os.kill(os.getpid(), signal.SIGINT)


def weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def test_ctrl_c_saves_the_epoch_so_far_and_resume_equals_a_straight_run(tmp_path, capsys):
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN when pytest itself runs in the background
    straight = train(make_cfg("train", tmp_path / "straight", EPOCHS))["ckpt_path"]
    out = tmp_path / "cut"
    with pytest.raises(SystemExit) as stop:
        train(make_cfg("train", out, EPOCHS), [CtrlCInEpoch(epoch=1, batch=0)])
    assert stop.value.code == 130
    saved = out / "checkpoints" / "interrupted.ckpt"
    assert f"resume with ckpt_path={saved}" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGINT) is before  # Ctrl-C does what it did before the run
    state = torch.load(saved, weights_only=True)
    assert state["epoch"] == 1 and state["loops"]["fit_loop"]["state_dict"]["combined_loader"] == [
        {"epoch": 1, "served": 1}
    ]
    # the saved state is past the epoch-0 checkpoint, and not the finished run
    last = out / "checkpoints" / "last.ckpt"
    assert state["global_step"] > torch.load(last, weights_only=True)["global_step"]
    a, cut = weights(Path(straight)), weights(saved)
    assert not all(torch.equal(a[k], cut[k]) for k in a)
    resumed = train(make_cfg("train", out, [*EPOCHS, f"ckpt_path={saved}"]))  # in place
    b = weights(Path(resumed["ckpt_path"]))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not saved.exists()  # finished: the interrupted state is out of date


def test_ctrl_c_of_the_train_command_exits_130_and_resumes(tmp_path):
    """A real SIGINT from outside, while the command trains (after the first epoch's checkpoint,
    with 9 epochs to go: seconds for a poll every 0.05 s; the resumed run trains them all)."""
    out = tmp_path / "run"
    common = ["debug=tiny", "trainer.max_epochs=10", "logger=csv", f"hydra.run.dir={out}"]
    last = out / "checkpoints" / "last.ckpt"
    proc = signal_when("train.py", common, last.exists, signal.SIGINT)
    saved = out / "checkpoints" / "interrupted.ckpt"
    assert proc.returncode == 130, proc.stderr[-2000:]
    assert f"resume with ckpt_path={saved}" in proc.stderr
    step = torch.load(saved, weights_only=True)["global_step"]
    assert step > torch.load(last, weights_only=True)["global_step"]
    # the resume runs in this process: what the command runs once Hydra has composed its config
    train(make_cfg("train", out, ["trainer.max_epochs=10", "logger=csv", f"ckpt_path={saved}"]))
    assert torch.load(last, weights_only=True)["epoch"] == 9 and not saved.exists()


class StopAfter(pl.Callback):
    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_end(self, trainer, pl_module):
        if trainer.current_epoch == self.epoch:
            trainer.should_stop = True


def kept(folder: Path) -> list[str]:
    return sorted(p.name for p in (folder / "checkpoints").glob("*.ckpt"))


@pytest.mark.parametrize("where", ["in place", "new folder"])
def test_save_top_k_holds_across_resumes(tmp_path, where):
    over = ["trainer.max_epochs=4"]
    first = tmp_path / "first"
    train(make_cfg("train", first, over), [StopAfter(0)])
    assert kept(first) == ["epoch_000.ckpt", "last.ckpt"]
    second = first if where == "in place" else tmp_path / "second"
    last = first / "checkpoints" / "last.ckpt"
    train(make_cfg("train", second, [*over, f"ckpt_path={last}"]), [StopAfter(1)])
    assert kept(second) == ["epoch_001.ckpt", "last.ckpt"]
    last = second / "checkpoints" / "last.ckpt"
    with pytest.raises(SystemExit):
        train(make_cfg("train", second, [*over, f"ckpt_path={last}"]), [CtrlCInEpoch(2, 1)])
    interrupted = second / "checkpoints" / "interrupted.ckpt"
    train(make_cfg("train", second, [*over, f"ckpt_path={interrupted}"]))
    assert kept(second) == ["epoch_003.ckpt", "last.ckpt"]
    if where == "new folder":
        assert kept(first) == ["epoch_000.ckpt", "last.ckpt"]  # the first run's are left alone


def test_max_epochs_0_of_the_train_command_exits_2(tmp_path):
    proc = signal_when(
        "train.py",
        ["debug=tiny", "trainer.max_epochs=0", f"hydra.run.dir={tmp_path}"],
        lambda: False,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "trainer.max_epochs=0" in proc.stderr and "last checkpoint" not in proc.stdout
    assert not (tmp_path / "checkpoints").exists()

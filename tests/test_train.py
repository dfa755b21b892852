import math
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from supernet.module import load_supernet
from supernet.stages.train import run
from tests.conftest import make_cfg


class StopAfterFirstEpoch(pl.Callback):
    """Simulates an interrupted run: stops once the first epoch's checkpoint is written."""

    def on_train_epoch_end(self, trainer, pl_module):
        trainer.should_stop = True


def weights(ckpt: str) -> dict[str, torch.Tensor]:
    return torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]


def test_tiny_training_writes_checkpoint_logs_and_info(tmp_path):
    result = run(make_cfg("train", tmp_path))
    ckpt = Path(result["ckpt_path"])
    assert ckpt.name == "last.ckpt" and ckpt.is_file()
    assert math.isfinite(result["metrics"]["train/loss_epoch"])
    assert 0.0 <= result["metrics"]["val/acc"] <= 100.0
    assert (tmp_path / "csv" / "metrics.csv").is_file()
    assert list((tmp_path / "tensorboard").glob("events.*"))
    assert (tmp_path / "train_run.json").is_file()
    net, record = load_supernet(ckpt)
    assert (
        record["meta"]["space_config"] == {"C": 4, "N": 1} and record["meta"]["space"] == "nb201"
    )
    assert net(torch.zeros(2, 1, 8, 8), (3,) * 6).shape == (2, 10)


@pytest.mark.parametrize(
    "lever",
    [
        "sampler=uniform",
        "sampler=fair",
        "supernet.net.split_edge=0",
    ],  # few-shot: splits at epoch 1
)
def test_resume_equals_straight_run(tmp_path, lever):
    overrides = ["trainer.max_epochs=2", lever, "trainer.deterministic=true"]
    straight = run(make_cfg("train", tmp_path / "straight", overrides))
    first = run(make_cfg("train", tmp_path / "first", overrides), [StopAfterFirstEpoch()])
    assert torch.load(first["ckpt_path"], weights_only=True)["epoch"] == 0
    resumed = run(
        make_cfg("train", tmp_path / "resumed", [*overrides, f"ckpt_path={first['ckpt_path']}"])
    )
    a, b = weights(straight["ckpt_path"]), weights(resumed["ckpt_path"])
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    # and the interrupted run really differs from the finished one
    c = weights(first["ckpt_path"])
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_checkpoint_from_another_config_is_refused(tmp_path):
    first = run(make_cfg("train", tmp_path / "a"))
    cfg = make_cfg(
        "train",
        tmp_path / "b",
        ["space.C=8", f"ckpt_path={first['ckpt_path']}", "trainer.max_epochs=2"],
    )
    with pytest.raises(ValueError, match="C: checkpoint has 4, config has 8"):
        run(cfg)
    assert not (tmp_path / "b" / "checkpoints" / "last.ckpt").exists()
    with pytest.raises(ValueError, match="sampler"):
        run(
            make_cfg(
                "train",
                tmp_path / "c",
                ["sampler=fair", f"ckpt_path={first['ckpt_path']}", "trainer.max_epochs=2"],
            )
        )


def test_missing_checkpoint_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.ckpt"):
        run(make_cfg("train", tmp_path, [f"ckpt_path={tmp_path / 'nope.ckpt'}"]))


def test_nan_loss_steps_are_skipped_then_stop(tmp_path):
    cfg = make_cfg(
        "train",
        tmp_path,
        [
            "supernet.optimizer.lr=1e30",
            "supernet.grad_clip=0",
            "supernet.max_bad_steps=2",
            "trainer.max_epochs=3",
        ],
    )
    with pytest.raises(RuntimeError, match="NaN or infinite in 3 steps"):
        run(cfg)


def test_checkpoints_are_written_atomically(tmp_path, monkeypatch):
    from supernet.module import AtomicCheckpointIO

    io = AtomicCheckpointIO()
    path = tmp_path / "last.ckpt"
    io.save_checkpoint({"a": torch.ones(3)}, path)

    def crash(obj, f):
        open(f, "wb").write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        io.save_checkpoint({"a": torch.zeros(3)}, path)
    monkeypatch.undo()
    assert torch.equal(torch.load(path)["a"], torch.ones(3))  # the old one, whole
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]  # no temporary left behind


def test_shared_conv_layout_is_stored_loaded_and_checked_on_resume(tmp_path):
    shared = run(make_cfg("train", tmp_path / "a", ["supernet.net.share_convs=true"]))
    net, record = load_supernet(shared["ckpt_path"])
    assert record["meta"]["weights"] == net.weights == "shared_convs"
    separate = run(make_cfg("train", tmp_path / "b", ["supernet.net.share_convs=false"]))
    assert "weights" not in load_supernet(separate["ckpt_path"])[1]["meta"]
    for ckpt, flag, found, config in [
        (shared["ckpt_path"], "false", "'shared_convs'", "None"),
        (separate["ckpt_path"], "true", "None", "'shared_convs'"),
    ]:
        cfg = make_cfg(
            "train",
            tmp_path / f"resume_{flag}",
            [f"supernet.net.share_convs={flag}", f"ckpt_path={ckpt}", "trainer.max_epochs=2"],
        )
        with pytest.raises(
            ValueError, match=f"weights: checkpoint has {found}, config has {config}"
        ):
            run(cfg)

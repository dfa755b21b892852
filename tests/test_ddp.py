"""Lightning DDP on 2 CPU processes (gloo): the multi-GPU path, exercised without GPUs."""

import subprocess
import sys

import pytest
import torch

from supernet.data import NASDataModule
from tests.conftest import ROOT


def train_cli(*args: str) -> None:
    """`python scripts/train.py debug=tiny logger=csv ARGS...` in a subprocess; fails on a non-zero exit."""
    flags = [a for a in args if a.startswith("-")]  # Hydra's flags go before the overrides
    overrides = [a for a in args if not a.startswith("-")]
    cmd = [
        sys.executable,
        str(ROOT / "scripts" / "train.py"),
        *flags,
        "debug=tiny",
        "logger=csv",
        *overrides,
    ]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]


def train_ddp(out, *overrides) -> dict:
    train_cli("trainer=ddp_cpu", "trainer.max_epochs=2", f"hydra.run.dir={out}", *overrides)
    return torch.load(out / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)


@pytest.mark.slow
def test_ddp_shared_and_per_rank_archs(tmp_path):
    shared = train_ddp(tmp_path / "shared")
    per_rank = train_ddp(tmp_path / "per_rank", "supernet.arch_per_rank=true")
    for ckpt in (shared, per_rank):
        assert ckpt["epoch"] == 1 and ckpt["nas"]["meta"]["space_config"]["C"] == 4
        assert all(
            torch.isfinite(v).all() for v in ckpt["state_dict"].values() if v.is_floating_point()
        )
    a, b = shared["state_dict"], per_rank["state_dict"]
    assert not all(torch.equal(a[k], b[k]) for k in a)  # the option changes what is trained


def test_loader_shards_are_disjoint_and_cover_the_epoch():
    dm = NASDataModule("digits", batch_size=10, seed=0)
    dm.setup()
    x, y = dm.splits["train"]
    parts = []
    for rank in (0, 1):
        loader = dm.loader("train")
        loader.rank, loader.world_size = rank, 2
        parts.append(torch.cat([b for b, _ in loader]))
    assert len(parts[0]) == len(parts[1]) == len(x) // 2
    rows = [{bytes(r.numpy().tobytes()) for r in p.flatten(1)} for p in parts]
    assert len(rows[0] & rows[1]) <= 5  # digits has a few duplicate images


# A multirun over two seeds (`train.py -m seed=0,1`): tests/test_aggregate.py, which runs one
# sweep for its summary and checks the two supernets differ.

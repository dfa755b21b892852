"""Lightning DDP on 2 CPU processes (gloo): the multi-GPU path, exercised without GPUs."""

import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch
from hydra.utils import instantiate

from supernet.data import NASDataModule
from tests.conftest import ROOT, make_cfg


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
def test_ddp_trains_two_ranks_with_an_arch_each(tmp_path):
    """One real DDP run (3 interpreters); with per-rank archs the ranks' graphs differ, the case
    DDP's unused-parameter search exists for. Shared archs differ only in `_step_archs`, below."""
    ckpt = train_ddp(tmp_path / "per_rank", "supernet.arch_per_rank=true")
    assert ckpt["epoch"] == 1 and ckpt["nas"]["meta"]["space_config"]["C"] == 4
    assert ckpt["hyper_parameters"]["arch_per_rank"] is True
    assert all(
        torch.isfinite(v).all() for v in ckpt["state_dict"].values() if v.is_floating_point()
    )


@pytest.mark.parametrize("per_rank", [False, True])
def test_ranks_draw_in_lockstep_shared_or_one_arch_each(tmp_path, per_rank):
    cfg = make_cfg("train", tmp_path, [f"supernet.arch_per_rank={per_rank}"])
    steps = {}
    for rank in (0, 1):
        module = instantiate(cfg.supernet)
        module._trainer = SimpleNamespace(world_size=2, global_rank=rank)
        steps[rank] = [module._step_archs() for _ in range(6)]
    draws = instantiate(cfg.supernet).sampler  # what one process draws, step after step
    if per_rank:  # rank r trains the r-th of the step's two draws; both ranks advance by two
        expect = [[draws.sample_step() for _ in (0, 1)] for _ in range(6)]
        assert steps[0] == [e[0] for e in expect] and steps[1] == [e[1] for e in expect]
    else:
        assert steps[0] == steps[1] == [draws.sample_step() for _ in range(6)]


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

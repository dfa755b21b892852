import csv
from pathlib import Path

import pytest
import torch

from supernet.data import NASDataModule
from supernet.evaluator import SubnetEvaluator, choose_archs
from supernet.model import SuperNet
from supernet.space import NB201Space
from supernet.stages.evaluate import run
from supernet.stages.train import run as train
from supernet.utils import DataError, native_bf16, resolve_bf16
from tests.conftest import data_lines, kill_when, make_cfg

TINY = NB201Space(C=4, N=1)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("train")
    return train(make_cfg("train", out, ["trainer.max_epochs=2"]))["ckpt_path"]


def rows(path: Path) -> list[dict]:
    return list(csv.DictReader(open(path)))


def test_choose_archs_is_seeded_and_distinct():
    space = NB201Space()
    a = choose_archs(space, "uniform", 100, seed=1)
    assert (
        a == choose_archs(space, "uniform", 100, seed=1) != choose_archs(space, "uniform", 100, 2)
    )
    assert len(set(a)) == 100
    unique = choose_archs(space, "unique", 0, seed=0)
    assert len(unique) == 6466 and len({space.iso_key(x) for x in unique}) == 6466
    assert len(choose_archs(space, "all", 0, 0)) == 15625
    with pytest.raises(ValueError, match="archs='best'"):
        choose_archs(space, "best", 10, 0)


@pytest.mark.parametrize("bn", ["recalibrate", "batch", "inherit"])
def test_bn_modes_leave_the_supernet_unchanged(bn):
    torch.manual_seed(0)
    net = SuperNet(TINY, 10, in_channels=1, affine=True, track_running_stats=True).eval()
    dm = NASDataModule("digits", limit_train=200, batch_size=50)
    dm.setup()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    ev = SubnetEvaluator(net, dm.loader("heldout"), bn, dm.loader("train", train=True), 2)
    r = ev.evaluate((3, 3, 3, 1, 3, 2))
    assert 0 <= r.acc <= 100 and r.images == 100 and r.loss > 0
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert ev.evaluate((3, 3, 3, 1, 3, 2)) == r  # deterministic


def test_bn_modes_differ_and_inherit_needs_running_stats():
    net = SuperNet(TINY, 10, in_channels=1)  # no running statistics
    dm = NASDataModule("digits", limit_train=200, batch_size=50)
    dm.setup()
    with pytest.raises(ValueError, match="track_running_stats"):
        SubnetEvaluator(net, dm.loader("heldout"), "inherit")
    with pytest.raises(ValueError, match="expected one of"):
        SubnetEvaluator(net, dm.loader("heldout"), "running")
    recal = SubnetEvaluator(net, dm.loader("heldout"), "recalibrate", dm.loader("train", True), 2)
    batch = SubnetEvaluator(net, dm.loader("heldout", limit=10), "batch")
    arch = (3, 3, 3, 1, 3, 2)
    assert recal.evaluate(arch).loss != batch.evaluate(arch).loss
    assert net.stem[1].running_mean is None  # the recalibration buffers were temporary


def test_evaluate_writes_rows_and_resumes(tmp_path, ckpt):
    cfg = make_cfg("evaluate", tmp_path, [f"ckpt_path={ckpt}", "evaluator.num_archs=6"])
    first = run(cfg)
    assert first["evaluated"] == 6
    table = rows(tmp_path / "subnets.csv")
    assert len(table) == 6 and len({r["arch"] for r in table}) == 6
    assert all(0 <= float(r["acc"]) <= 100 for r in table)
    # a truncated last line (killed mid-write) is dropped and redone, nothing else is repeated
    text = (tmp_path / "subnets.csv").read_text()
    (tmp_path / "subnets.csv").write_text(text[:-10])
    again = run(cfg)
    assert again["evaluated"] == 1 and again["total"] == 6
    assert rows(tmp_path / "subnets.csv") == table
    # more archs: only the new ones are measured
    more = run(make_cfg("evaluate", tmp_path, [f"ckpt_path={ckpt}", "evaluator.num_archs=8"]))
    assert more["total"] == 8 and rows(tmp_path / "subnets.csv")[:6] == table


def test_evaluate_refuses_to_mix_settings(tmp_path, ckpt):
    run(make_cfg("evaluate", tmp_path, [f"ckpt_path={ckpt}", "evaluator.num_archs=2"]))
    before = (tmp_path / "subnets.csv").read_text()
    with pytest.raises(ValueError, match="bn='batch'"):
        run(
            make_cfg(
                "evaluate",
                tmp_path,
                [f"ckpt_path={ckpt}", "evaluator.num_archs=3", "evaluator.bn=batch"],
            )
        )
    with pytest.raises(ValueError, match="C: checkpoint has 4, config has 8"):
        run(make_cfg("evaluate", tmp_path, [f"ckpt_path={ckpt}", "space.C=8"]))
    assert (tmp_path / "subnets.csv").read_text() == before


def test_bf16_auto_is_what_the_cpu_computes_natively_and_never_mixes(tmp_path, ckpt, monkeypatch):
    over = [f"ckpt_path={ckpt}", "evaluator.num_archs=2", "evaluator.bf16=auto"]
    run(make_cfg("evaluate", tmp_path, over))
    native = native_bf16(torch.device("cpu"))
    assert {r["bf16"] for r in rows(tmp_path / "subnets.csv")} == {str(native)}
    before = (tmp_path / "subnets.csv").read_text()
    with pytest.raises(ValueError, match=f"bf16='{native}' but this run has bf16='{not native}'"):
        run(make_cfg("evaluate", tmp_path, [*over[:-1], f"evaluator.bf16={not native}"]))
    with pytest.raises(DataError, match=r"evaluator.bf16='maybe': expected true, false or auto"):
        run(make_cfg("evaluate", tmp_path, [*over[:-1], "evaluator.bf16=maybe"]))
    assert (tmp_path / "subnets.csv").read_text() == before
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)
    assert resolve_bf16("x", "auto", torch.device("cpu")) is True  # AMX alone computes bf16
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    assert resolve_bf16("x", "AUTO", torch.device("cpu")) is False  # emulated: fp32 is faster
    assert resolve_bf16("x", True, torch.device("cpu")) is True


def test_evaluate_proxy_ranked_archs(tmp_path, ckpt):
    space = NB201Space()
    archs = [space.to_str(a) for a in choose_archs(space, "uniform", 5, 0)]
    (tmp_path / "zs.csv").write_text(
        "arch,wrcor\n" + "".join(f"{a},{i}\n" for i, a in enumerate(archs))
    )
    out = tmp_path / "out"
    run(
        make_cfg(
            "evaluate",
            out,
            [
                f"ckpt_path={ckpt}",
                f"evaluator.archs={tmp_path / 'zs.csv'}",
                "evaluator.rank_by=wrcor",
                "evaluator.num_archs=2",
            ],
        )
    )
    assert [r["arch"] for r in rows(out / "subnets.csv")] == archs[::-1][:2]
    (tmp_path / "bad.csv").write_text("arch,wrcor\n|nope~0|,1\n")
    with pytest.raises(ValueError, match=r"bad\.csv:2: bad arch '\|nope~0\|'"):
        run(
            make_cfg(
                "evaluate", out, [f"ckpt_path={ckpt}", f"evaluator.archs={tmp_path / 'bad.csv'}"]
            )
        )


@pytest.mark.slow
def test_sigkill_mid_run_then_rerun_loses_and_repeats_nothing(tmp_path, ckpt):
    """Killed once 3 of 40 rows are on disk (a row is flushed as it is measured, every ~0.3 s)."""
    out = tmp_path / "subnets.csv"
    args = [
        "debug=tiny",
        f"ckpt_path={ckpt}",
        "evaluator.num_archs=40",
        f"out={out}",
        f"hydra.run.dir={tmp_path / 'run'}",
    ]
    kill_when("evaluate.py", args, lambda: data_lines(out) >= 3)
    killed = rows(out)
    assert 3 <= len(killed) < 40
    cfg = make_cfg(
        "evaluate", tmp_path, [f"ckpt_path={ckpt}", "evaluator.num_archs=40", f"out={out}"]
    )
    result = run(cfg)
    final = rows(out)
    assert len(final) == 40 == len({r["arch"] for r in final})
    assert final[: len(killed)] == killed and result["evaluated"] == 40 - len(killed)


def test_shards_split_the_archs_and_merge_without_duplicates(tmp_path, ckpt):
    common = [f"ckpt_path={ckpt}", "evaluator.num_archs=7", f"out={tmp_path / 'subnets.csv'}"]
    whole = run(
        make_cfg("evaluate", tmp_path / "whole", [f"ckpt_path={ckpt}", "evaluator.num_archs=7"])
    )
    for k in (0, 1):
        r = run(make_cfg("evaluate", tmp_path, [*common, f"shard={k}", "num_shards=2"]))
        assert r["evaluated"] == (4 if k == 0 else 3)
    # a shard re-run by mistake adds nothing; a merge keeps each arch once
    run(make_cfg("evaluate", tmp_path, [*common, "shard=1", "num_shards=2"]))
    merged = run(make_cfg("evaluate", tmp_path, [*common, "num_shards=2", "merge=true"]))
    assert merged["total"] == 7
    got = {r["arch"]: r for r in rows(tmp_path / "subnets.csv")}
    want = {r["arch"]: r for r in rows(Path(whole["out"]))}
    assert got == want  # same archs, same numbers as one process
    (tmp_path / "subnets.shard-1-of-2.csv").unlink()
    with pytest.raises(FileNotFoundError, match="shard-1-of-2"):
        run(make_cfg("evaluate", tmp_path, [*common, "num_shards=2", "merge=true"]))


def test_same_seed_same_file(tmp_path, ckpt):
    a = run(make_cfg("evaluate", tmp_path / "a", [f"ckpt_path={ckpt}", "evaluator.num_archs=4"]))
    b = run(make_cfg("evaluate", tmp_path / "b", [f"ckpt_path={ckpt}", "evaluator.num_archs=4"]))
    assert Path(a["out"]).read_bytes() == Path(b["out"]).read_bytes()
    c = run(
        make_cfg(
            "evaluate", tmp_path / "c", [f"ckpt_path={ckpt}", "evaluator.num_archs=4", "seed=1"]
        )
    )
    assert Path(c["out"]).read_bytes() != Path(a["out"]).read_bytes()

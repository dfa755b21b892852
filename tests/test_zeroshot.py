"""scripts/zeroshot.py on the tiny preset (C=4, N=1, digits): output, vote, resume, bad input."""

from __future__ import annotations

import csv
import fcntl
import math
import signal
import time
from pathlib import Path

import pytest
import torch
from hydra.errors import MissingConfigException

from supernet.chain_space import ChainSpace
from supernet.space import NB201Space
from supernet.stages.zeroshot import report, run, scoring_space
from supernet.utils import DataError
from tests.conftest import data_lines, kill_when, make_cfg, signal_when

SPACE = NB201Space(C=4, N=1)


def arch_csv(path: Path, n: int, seed: int = 0) -> Path:
    g = torch.Generator().manual_seed(seed)
    archs = [
        SPACE.to_str(SPACE.from_index(i))
        for i in torch.randperm(SPACE.size, generator=g)[:n].tolist()
    ]
    path.write_text("arch,note\n" + "".join(f"{a},x\n" for a in archs))
    return path


def read(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def zeroshot(tmp_path: Path, out: Path, *overrides: str) -> dict:
    cfg = make_cfg("zeroshot", tmp_path, [f"out='{out}'", "progress=false", *overrides])
    result = run(cfg)
    report(cfg, result)  # what the command logs at the end, for every kind of run (a merge too)
    return result


def test_scores_every_arch_with_vote(tmp_path: Path) -> None:
    archs = arch_csv(tmp_path / "archs.csv", 6)
    out = tmp_path / "z.csv"
    r = zeroshot(tmp_path, out, f"archs={archs}", "proxies=[wrcor,naswot,params,vote]")
    rows = read(out)
    assert r["scored"] == r["total"] == len(rows) == 6
    assert [row["arch"] for row in rows] == [row["arch"] for row in read(archs)]
    assert list(rows[0])[:5] == ["arch", "wrcor", "naswot", "params", "vote"]
    for row in rows:
        assert all(math.isfinite(float(row[k])) for k in ("wrcor", "naswot", "params", "vote"))
    votes = sorted(float(row["vote"]) for row in rows)
    assert sum(votes) == pytest.approx(6 * 3.5)  # mean of ranks 1..6, whatever the ties


def test_resume_after_kill_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    archs = arch_csv(tmp_path / "archs.csv", 7, seed=1)
    full = tmp_path / "full.csv"
    zeroshot(tmp_path, full, f"archs={archs}", "proxies=[wrcor,params]")
    part = tmp_path / "part.csv"
    zeroshot(tmp_path, part, f"archs={archs}", "proxies=[wrcor,params]", "zeroshot.limit=4")
    data = part.read_bytes()
    part.write_bytes(data[: len(data) - 9])  # killed while writing the 4th row
    r = zeroshot(tmp_path, part, f"archs={archs}", "proxies=[wrcor,params]")
    assert r["repaired"] and r["scored"] == 4 and r["total"] == 7
    rows = read(part)
    assert len(rows) == len({row["arch"] for row in rows}) == 7
    assert sorted(map(tuple, (row.values() for row in rows))) == sorted(
        map(tuple, (row.values() for row in read(full)))
    )  # the same scores, whether or not the run was interrupted
    assert zeroshot(tmp_path, part, f"archs={archs}", "proxies=[wrcor,params]")["scored"] == 0


def test_resume_refuses_other_settings(tmp_path: Path) -> None:
    archs = arch_csv(tmp_path / "archs.csv", 2)
    out = tmp_path / "z.csv"
    zeroshot(tmp_path, out, f"archs={archs}", "proxies=[params]")
    with pytest.raises(ValueError, match="seed"):
        zeroshot(tmp_path, out, f"archs={archs}", "proxies=[params]", "seed=1")
    with pytest.raises(ValueError, match="header"):
        zeroshot(tmp_path, out, f"archs={archs}", "proxies=[params,flops]")


def test_repeats_average_the_seeds_scores_and_never_mix_with_one_seed(tmp_path: Path) -> None:
    archs = arch_csv(tmp_path / "archs.csv", 5, seed=2)
    opts = [f"archs={archs}", "proxies=[meco]", "data.seed=0"]  # the split: not the scoring seed
    one = {}
    for seed in (3, 4):
        zeroshot(tmp_path, tmp_path / f"s{seed}.csv", *opts, f"seed={seed}")
        one[seed] = {r["arch"]: float(r["meco"]) for r in read(tmp_path / f"s{seed}.csv")}
    assert one[3] != one[4]  # the seed draws another network and batch: worth averaging
    out = tmp_path / "mean.csv"
    zeroshot(tmp_path, out, *opts, "seed=3", "zeroshot.repeats=2")
    rows = read(out)
    assert [r["repeats"] for r in rows] == ["2"] * 5
    for r in rows:
        assert float(r["meco"]) == pytest.approx((one[3][r["arch"]] + one[4][r["arch"]]) / 2)
    with pytest.raises(ValueError, match="repeats"):  # a resume with one seed would mix the two
        zeroshot(tmp_path, out, *opts, "seed=3")
    with pytest.raises(ValueError, match=r"zeroshot.repeats=0: expected an integer >= 1"):
        zeroshot(tmp_path, tmp_path / "z.csv", f"archs={archs}", "zeroshot.repeats=0")


def test_cells_deepen_the_scoring_network_and_never_mix_with_the_space_s(tmp_path: Path) -> None:
    archs = arch_csv(tmp_path / "archs.csv", 4, seed=5)
    opts = [f"archs={archs}", "proxies=[meco]"]
    zeroshot(tmp_path, tmp_path / "plain.csv", *opts)
    deep = tmp_path / "deep.csv"
    zeroshot(tmp_path, deep, *opts, "zeroshot.cells=2")
    rows = read(deep)
    assert [r["cells"] for r in rows] == ["2"] * 4
    plain = {r["arch"]: r["meco"] for r in read(tmp_path / "plain.csv")}
    assert all(r["meco"] != plain[r["arch"]] for r in rows)  # another network: other scores
    with pytest.raises(ValueError, match="cells"):  # a resume without it would mix the two
        zeroshot(tmp_path, deep, *opts)
    with pytest.raises(ValueError, match=r"zeroshot.cells=0: expected an integer >= 1"):
        zeroshot(tmp_path, tmp_path / "z.csv", *opts, "zeroshot.cells=0")
    assert not (tmp_path / "z.csv").exists()


def test_cells_only_where_the_space_has_cells_per_stage() -> None:
    space = NB201Space(C=4, N=1)
    assert scoring_space(space, None) is space
    deep = scoring_space(space, 3)
    assert (deep.C, deep.N, deep.size) == (4, 3, space.size)
    with pytest.raises(
        DataError, match="zeroshot.cells=2: the chain space has no cells per stage"
    ):
        scoring_space(ChainSpace(), 2)


def test_proxies_score_the_stored_images_whatever_data_resolution_says(tmp_path: Path) -> None:
    """data.resolution is the supernet's proxy task; a zero-shot score keeps its definition."""
    archs = arch_csv(tmp_path / "archs.csv", 3, seed=3)
    for name, res in (("full", "0"), ("small", "4")):
        zeroshot(
            tmp_path,
            tmp_path / f"{name}.csv",
            f"archs={archs}",
            "proxies=[meco]",
            f"data.resolution={res}",
        )
    assert read(tmp_path / "full.csv") == read(tmp_path / "small.csv")


def test_a_bf16_column_only_where_a_proxy_ran_under_bf16(tmp_path: Path) -> None:
    archs = arch_csv(tmp_path / "archs.csv", 3)
    for proxies, column in (("[wrcor,meco]", True), ("[meco,params]", False)):
        out = tmp_path / f"{column}.csv"
        zeroshot(tmp_path, out, f"archs={archs}", f"proxies={proxies}", "zeroshot.bf16=true")
        assert ("bf16" in read(out)[0]) is column  # MeCo and costs never use bf16
    fp32 = tmp_path / "fp32.csv"  # so a MeCo file resumes whichever bf16 setting it meets
    zeroshot(tmp_path, fp32, f"archs={archs}", "proxies=[meco,params]", "zeroshot.bf16=false")
    assert read(fp32) == read(tmp_path / "False.csv")


def test_bad_arch_names_file_line_and_value(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    good = SPACE.to_str((1, 2, 3, 4, 0, 1))
    bad.write_text(f"arch\n{good}\n|conv_9x9~0|+|oops|\n")
    with pytest.raises(ValueError, match=r"bad\.csv:3: bad arch '\|conv_9x9~0\|\+\|oops\|'"):
        zeroshot(tmp_path, tmp_path / "z.csv", f"archs={bad}", "proxies=[params]")


def test_bad_proxy_names(tmp_path: Path) -> None:
    """A proxy is an option of the proxies group: a misspelt one fails while composing, one with
    no function in the registry (an entry added by hand) before anything runs."""
    with pytest.raises(MissingConfigException, match="proxies/wrcorr"):
        zeroshot(tmp_path, tmp_path / "z.csv", "proxies=[wrcorr]")
    with pytest.raises(ValueError, match="unknown proxy 'wrcorr'"):
        zeroshot(tmp_path, tmp_path / "z.csv", "proxies=[wrcor]", "+zeroshot.proxies.wrcorr={}")
    with pytest.raises(ValueError, match="at least two"):
        zeroshot(tmp_path, tmp_path / "z.csv", "proxies=[wrcor,vote]")
    with pytest.raises(ValueError, match="at least one proxy"):
        zeroshot(tmp_path, tmp_path / "z.csv", "proxies=[vote]")
    with pytest.raises(ValueError, match=r"zeroshot.vote_of=\['naswot', 'wrcor'\]: \['naswot'\]"):
        zeroshot(
            tmp_path,
            tmp_path / "z.csv",
            "proxies=[wrcor,params,vote]",
            "zeroshot.vote_of=[naswot,wrcor]",
        )
    assert not (tmp_path / "z.csv").exists()


def test_shards_merge_to_the_single_process_file(tmp_path: Path) -> None:
    archs = arch_csv(tmp_path / "archs.csv", 5, seed=2)
    proxies = "proxies=[params,flops,synflow,vote]"
    whole = tmp_path / "whole.csv"
    zeroshot(tmp_path, whole, f"archs={archs}", proxies)
    out = tmp_path / "z.csv"
    for k in (0, 1, 2):
        zeroshot(tmp_path, out, f"archs={archs}", proxies, f"shard={k}", "num_shards=3")
    r = zeroshot(tmp_path, out, f"archs={archs}", proxies, "num_shards=3", "merge=true")
    assert r["total"] == 5
    key = lambda rows: sorted(map(tuple, (row.values() for row in rows)))  # noqa: E731
    assert key(read(out)) == key(read(whole))  # vote included: it is ranked after the merge


def test_worker_processes_write_the_rows_one_process_writes(tmp_path: Path) -> None:
    archs = arch_csv(tmp_path / "archs.csv", 7, seed=3)
    opts = [f"archs={archs}", "proxies=[wrcor,meco,vote]"]
    zeroshot(tmp_path, tmp_path / "one.csv", *opts, "zeroshot.workers=1")
    out = tmp_path / "two.csv"
    r = zeroshot(tmp_path, out, *opts, "zeroshot.workers=2")
    assert r["workers"] == 2 and r["scored"] == r["total"] == 7
    assert read(out) == read(tmp_path / "one.csv")  # to the bit and in order, vote included
    assert sorted(p.name for p in tmp_path.glob("two*")) == ["two.csv"]  # worker files folded in


def test_a_stopped_run_s_worker_files_are_folded_in_not_rescored(tmp_path: Path) -> None:
    archs = arch_csv(tmp_path / "archs.csv", 6, seed=4)
    opts = [f"archs={archs}", "proxies=[wrcor,params]"]
    whole = tmp_path / "whole.csv"
    zeroshot(tmp_path, whole, *opts)
    out = tmp_path / "z[1].csv"  # a name glob would read as a pattern
    zeroshot(tmp_path, out, *opts, "zeroshot.limit=2")
    rows = read(whole)
    for k, part in enumerate((rows[4:5], rows[2:4])):  # two workers' files of a killed run
        lines = [",".join(rows[0])] + [",".join(row.values()) for row in part]
        (tmp_path / f"z[1].part-{k}.csv").write_text("\n".join(lines) + "\n")
    r = zeroshot(tmp_path, out, *opts)
    assert r["scored"] == 1 and r["total"] == 6  # only the arch no file held
    assert read(out) == rows  # the same scores, in the listed order
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("z[")) == ["z[1].csv"]
    (tmp_path / "z[1].part-0.csv").write_text("arch,other\nx,1\n")  # not this run's: left alone
    with pytest.raises(DataError, match="not a results file of this run"):
        zeroshot(tmp_path, out, *opts)
    assert (tmp_path / "z[1].part-0.csv").read_text() == "arch,other\nx,1\n"


def test_bad_worker_counts(tmp_path: Path) -> None:
    archs = arch_csv(tmp_path / "archs.csv", 2)
    for bad in ("0", "two"):
        with pytest.raises(DataError, match=f"zeroshot.workers={bad}|zeroshot.workers='{bad}'"):
            zeroshot(tmp_path, tmp_path / "z.csv", f"archs={archs}", f"zeroshot.workers={bad}")
    assert not (tmp_path / "z.csv").exists()


@pytest.mark.slow
def test_sigkill_mid_run_then_rerun(tmp_path: Path) -> None:
    out = tmp_path / "zs.csv"
    args = [
        "debug=tiny",
        "archs=all",
        "zeroshot.limit=200",
        "proxies=[wrcor]",
        "zeroshot.chunk=1",
        f"out={out}",
        f"hydra.run.dir={tmp_path / 'run'}",
    ]
    kill_when("zeroshot.py", args, lambda: data_lines(out) >= 3)
    killed = read(out)
    assert 3 <= len(killed) < 200
    r = zeroshot(tmp_path, out, "archs=all", "zeroshot.limit=200", "proxies=[wrcor]")
    final = read(out)
    assert len(final) == 200 == len({row["arch"] for row in final})
    assert final[: len(killed)] == killed and r["scored"] == 200 - len(killed)


@pytest.mark.slow
def test_workers_outlive_no_killed_parent_and_the_rerun_folds_their_rows(tmp_path: Path) -> None:
    out = tmp_path / "zs.csv"
    opts = ["archs=all", "zeroshot.limit=120", "proxies=[wrcor]"]
    args = ["debug=tiny", *opts, "zeroshot.workers=2", "zeroshot.chunk=1", f"out={out}"]
    parts = [tmp_path / "zs.part-0.csv", tmp_path / "zs.part-1.csv"]
    ended = signal_when(  # the parent alone, as `kill -9 PID` would
        "zeroshot.py",
        [*args, f"hydra.run.dir={tmp_path / 'run'}"],
        lambda: sum(data_lines(p) for p in parts) >= 4,
        sig=signal.SIGKILL,
    )
    assert ended.returncode == -signal.SIGKILL
    deadline = time.time() + 60
    while time.time() < deadline and any(locked(p) for p in parts):
        time.sleep(0.5)  # each worker sees its parent gone after its current arch
    assert not any(locked(p) for p in parts)
    written = sum(data_lines(p) for p in parts)
    assert 4 <= written < 120
    r = zeroshot(tmp_path, out, *opts)
    final = read(out)
    assert len(final) == 120 == len({row["arch"] for row in final})
    assert r["scored"] == 120 - written and not list(tmp_path.glob("zs.part-*"))


def locked(path: Path) -> bool:
    """Whether another process holds `path`'s lock (a ResultsCSV writing it)."""
    with open(path, "rb") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.flock(f, fcntl.LOCK_UN)
        return False

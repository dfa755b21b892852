"""scripts/fit.py and scripts/query.py through their `run(cfg)`: table completeness, checkpoint,
bad input (message names file/line/value; nothing written or overwritten), budgets."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from hydra.utils import instantiate
from omegaconf import DictConfig
from scipy.stats import kendalltau

from predictor.budgets import pareto_front
from predictor.fusion import fuse_weighted
from predictor.io import read_samples
from predictor.stages import fit, query
from predictor.table import cost_columns, load_checkpoint
from supernet.classes import class_index, live_index
from supernet.space import NB201Space
from supernet.utils import DataError
from tests.conftest import kill_when, make_cfg

ROOT = Path(__file__).resolve().parents[1]
SPACE = NB201Space()
TINY = [
    "predictor.ensemble=1",
    "predictor.epochs=2",
    "predictor.hidden_channels=8",
    "predictor.num_layers=2",
]


def compose_cfg(name: str, tmp_path: Path, overrides: list[str]) -> DictConfig:
    return make_cfg(name, tmp_path / "out", overrides, tiny=False)


def write_samples(path: Path, n: int = 60, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    with open(path, "w") as f:
        f.write("arch,acc,note\n")
        for i in rng.choice(SPACE.size, n, replace=False):
            arch = SPACE.from_index(int(i))
            f.write(f"{SPACE.to_str(arch)},{60 + 5 * arch.count(3) + rng.normal():.3f},x\n")
    return path


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    tmp = tmp_path_factory.mktemp("fit")
    samples = write_samples(tmp / "s.csv")
    cfg = compose_cfg("fit", tmp, [f"samples={samples}", "use_cost_features=true", *TINY])
    return fit.run(cfg), tmp


def test_table_has_every_arch_once_sorted(fitted: tuple[dict, Path]) -> None:
    out, _ = fitted
    with open(out["table"]) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == SPACE.size
    assert len({r["arch"] for r in rows}) == SPACE.size
    scores = [float(r["score"]) for r in rows]
    assert scores == sorted(scores, reverse=True)
    assert [int(r["rank"]) for r in rows[:3]] == [1, 2, 3]
    assert sum(int(r["count"]) for r in rows) == 60
    for key in ("flops_M", "params_M"):
        assert all(float(r[key]) > 0 for r in rows)
    assert Path(out["plot"]).stat().st_size > 0
    assert out["metrics"]["fit/features"] == ["flops_M", "params_M"]


def test_checkpoint_reproduces_the_table(fitted: tuple[dict, Path]) -> None:
    out, _ = fitted
    pred, ckpt = load_checkpoint(out["checkpoint"], SPACE)
    assert (
        ckpt["space"] == "nb201" and len(ckpt["hash"]) == 16 and ckpt["u"].shape == (SPACE.size, 2)
    )
    with open(out["table"]) as f:
        first = next(csv.DictReader(f))
    i = SPACE.index(SPACE.parse(first["arch"]))
    score = pred.predict(torch.tensor([SPACE.from_index(i)]), ckpt["u"][i : i + 1])
    # the table ranks by the fusion with live params (vote_with=auto); the fit's own score stays
    assert float(score) == pytest.approx(float(first["predicted"]), rel=1e-5)


def test_digits_costs_use_the_input_shape(tmp_path: Path) -> None:
    samples = write_samples(tmp_path / "s.csv", n=20)
    cfg = compose_cfg(
        "fit", tmp_path, [f"samples={samples}", "predictor=ridge", "input_shape=[1,8,8]"]
    )
    out = fit.run(cfg)
    arch = SPACE.parse(out["top"][0][1])
    # digits' recipe (conf/recipe/nb201_digits.yaml) trains 1 cell per stage: costs follow it
    space = NB201Space(C=cfg.space.C, N=cfg.space.N)
    assert cfg.space.N == 1
    assert float(out["top"][0][3]) == pytest.approx(space.cost(arch, (1, 8, 8)).flops_M, rel=1e-5)


def test_duplicates_are_averaged(tmp_path: Path) -> None:
    a = SPACE.to_str((3,) * 6)
    b = SPACE.to_str((1,) * 6)
    path = tmp_path / "d.csv"
    path.write_text(f"arch,acc\n{a},90\n{b},80\n{a},94\n")
    archs, acc, counts = read_samples(path, SPACE)
    assert archs == [(3,) * 6, (1,) * 6] and acc.tolist() == [92.0, 80.0]
    assert counts.tolist() == [2, 1]


GOOD = SPACE.to_str((3,) * 6)
BAD_CASES = {
    "missing column": ("arch,accuracy\n{g},90\n", ":1:", "accuracy"),
    "malformed arch": ("arch,acc\n{g},90\n|conv~0|,91\n", ":3:", "|conv~0|"),
    "unknown op": (
        "arch,acc\n{g},90\n" + GOOD.replace("nor_conv_3x3~1", "sep_conv~1") + ",91\n",
        ":3:",
        "sep_conv",
    ),
    "nan acc": ("arch,acc\n{g},nan\n", ":2:", "nan"),
    "inf acc": ("arch,acc\n{g},90\n{g},inf\n", ":3:", "inf"),
    "not a number": ("arch,acc\n{g},ninety\n", ":2:", "ninety"),
    "out of range": ("arch,acc\n{g},90\n{g},150\n", ":3:", "150"),
    "negative": ("arch,acc\n{g},-1\n", ":2:", "-1"),
    "fractions": ("arch,acc\n{g},0.9\n{g},0.8\n", ":2:", "0.9"),
    "negative loss": ("arch,acc,loss\n{g},90,0.3\n{g},91,-0.2\n", ":3:", "-0.2"),
    "nan loss": ("arch,acc,loss\n{g},90,nan\n", ":2:", "nan"),
    "no rows": ("arch,acc\n", "no data rows", "s.csv"),
    "one arch": ("arch,acc\n{g},90\n{g},91\n", "1 distinct arch", "s.csv"),
}


@pytest.mark.parametrize("case", list(BAD_CASES))
def test_bad_samples_name_file_line_value_and_write_nothing(case: str, tmp_path: Path) -> None:
    text, where, value = BAD_CASES[case]
    path = tmp_path / "s.csv"
    path.write_text(text.replace("{g}", GOOD))
    old = tmp_path / "old_table.csv"
    old.write_text("sentinel\n")
    cfg = compose_cfg("fit", tmp_path, [f"samples={path}", f"table={old}", *TINY])
    with pytest.raises(DataError) as err:
        fit.run(cfg)
    msg = str(err.value)
    assert str(path) in msg and where in msg and value in msg
    assert old.read_text() == "sentinel\n"
    assert not (tmp_path / "out").exists()


def test_the_fit_takes_the_loss_when_the_samples_have_it(tmp_path: Path) -> None:
    """subnets.csv has both columns; the fit ranks by -loss (target=auto) or by the accuracy
    (target=acc). Here the loss follows the 3x3 convolutions and the accuracy is noise, so which
    one the fit took shows in its ranking; the table's acc column stays the measured accuracy."""
    rng = np.random.default_rng(0)
    archs = [SPACE.from_index(int(i)) for i in rng.choice(SPACE.size, 80, replace=False)]
    loss = {a: 2.0 - 0.2 * a.count(3) + 0.01 * rng.normal() for a in archs}
    acc = {a: float(rng.uniform(40, 60)) for a in archs}
    path = tmp_path / "subnets.csv"
    path.write_text(
        "arch,acc,loss\n"
        + "".join(f"{SPACE.to_str(a)},{acc[a]:.3f},{loss[a]:.4f}\n" for a in archs)
    )
    neg_loss = [-loss[a] for a in archs]
    taus = {}
    for target in ("auto", "acc", "loss"):
        out = tmp_path / target
        cfg = compose_cfg("fit", out, [f"samples={path}", "predictor=ridge", f"target={target}"])
        result = fit.run(cfg)
        assert result["metrics"]["fit/target"] == ("acc" if target == "acc" else "loss")
        with open(result["table"]) as f:
            rows = {r["arch"]: r for r in csv.DictReader(f)}
        pred = [float(rows[SPACE.to_str(a)]["predicted"]) for a in archs]
        taus[target] = kendalltau(pred, neg_loss)[0]
        a = archs[0]
        assert float(rows[SPACE.to_str(a)]["acc"]) == pytest.approx(acc[a], abs=1e-3)
    assert taus["auto"] == taus["loss"] > 0.6, taus  # ties within a count of 3x3 convs
    assert taus["acc"] < 0.3, taus
    with pytest.raises(
        DataError, match=r"target='los'; expected one of \['auto', 'acc', 'loss'\]"
    ):
        fit.run(compose_cfg("fit", tmp_path / "bad", [f"samples={path}", "target=los"]))
    only = tmp_path / "acc_only.csv"  # a file without a loss column: auto fits the accuracy
    only.write_text("arch,acc\n" + "".join(f"{SPACE.to_str(a)},{acc[a]:.3f}\n" for a in archs))
    cfg = compose_cfg("fit", tmp_path / "only", [f"samples={only}", "predictor=ridge"])
    assert fit.run(cfg)["metrics"]["fit/target"] == "acc"
    with pytest.raises(DataError, match=r"acc_only.csv:1: .*loss"):
        fit.run(compose_cfg("fit", tmp_path / "x", [f"samples={only}", "target=loss"]))


def test_missing_samples_file_and_incomplete_features(tmp_path: Path) -> None:
    cfg = compose_cfg("fit", tmp_path, [f"samples={tmp_path / 'nope.csv'}", *TINY])
    with pytest.raises(DataError, match="nope.csv: no such file"):
        fit.run(cfg)
    samples = write_samples(tmp_path / "s.csv", n=10)
    feats = tmp_path / "f.csv"
    feats.write_text(f"arch,wrcor\n{GOOD},1.5\n")
    cfg = compose_cfg("fit", tmp_path, [f"samples={samples}", f"features={feats}", *TINY])
    with pytest.raises(DataError, match=r"f.csv: features cover 1 of 15625"):
        fit.run(cfg)
    assert not (tmp_path / "out").exists()


def test_zero_shot_features_file(tmp_path: Path) -> None:
    feats = tmp_path / "zs.csv"
    with open(feats, "w") as f:
        f.write("arch,wrcor,seed,data\n")  # as scripts/zeroshot.py writes it
        for i, arch in enumerate(SPACE.all_archs()):
            f.write(f"{SPACE.to_str(arch)},{np.sin(i)},0,digits\n")
    samples = write_samples(tmp_path / "s.csv", n=30)
    over = [f"samples={samples}", f"features={feats}", "use_cost_features=true", "predictor=ridge"]
    out = fit.run(compose_cfg("fit", tmp_path, over))
    assert out["metrics"]["fit/features"] == [
        "flops_M",
        "params_M",
        "wrcor",
    ]  # constant seed dropped
    assert out["predictor"].u_channels == 3


def test_vote_with_ranks_the_table_by_the_fusion(tmp_path: Path) -> None:
    feats = tmp_path / "zs.csv"
    with open(feats, "w") as f:
        f.write("arch,wrcor\n")
        for i, arch in enumerate(SPACE.all_archs()):
            f.write(f"{SPACE.to_str(arch)},{np.sin(i)}\n")
    samples = write_samples(tmp_path / "s.csv", n=30)
    over = [f"samples={samples}", f"features={feats}", "predictor=ridge"]
    voted = [*over, "vote_with=[wrcor,params_M]", "vote_rule=mean"]
    out = fit.run(compose_cfg("fit", tmp_path, voted))
    rows = list(csv.DictReader(open(out["table"])))
    assert list(rows[0])[-1] == "predicted" and out["metrics"]["fit/vote_with"] == [
        "wrcor",
        "params_M",
    ]
    index = np.array([SPACE.index(SPACE.parse(r["arch"])) for r in rows])
    predicted = np.array([float(r["predicted"]) for r in rows])
    # a zero-shot score counts once per class of archs computing the same function (its mean),
    # and params are those of the pruned arch: dead convolutions cost nothing
    classes = class_index(SPACE)
    wrcor = np.sin(np.arange(SPACE.size, dtype=float))
    wrcor = (np.bincount(classes, wrcor) / np.bincount(classes))[classes]
    costs = cost_columns(SPACE, (1, 8, 8), 10)
    live = costs[live_index(SPACE), 1]
    columns = {"predicted": predicted, "wrcor": wrcor[index], "params_M": live[index]}
    expected, weights = fuse_weighted(columns, rule="mean", trust="predicted")
    assert out["metrics"]["fit/weights"] == pytest.approx(weights, rel=1e-4)  # predicted: 6 digits
    score = np.array([float(r["score"]) for r in rows])
    # the table's predicted is rounded to 6 digits, which ties a few archs: scores agree closely
    assert np.abs(score - expected).max() < 0.01
    assert all(a >= b for a, b in zip(score, score[1:]))
    with pytest.raises(DataError, match=r"vote_with: no column \['naswot'\]; available"):
        fit.run(compose_cfg("fit", tmp_path / "bad", [*over, "vote_with=[naswot]"]))
    assert not (tmp_path / "bad" / "out").exists()


def test_fit_script_exits_nonzero_on_bad_input(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text(f"arch,acc\n{GOOD},101\n")
    proc = subprocess.run(
        [
            sys.executable,
            "scripts/fit.py",
            f"samples={path}",
            f"hydra.run.dir={tmp_path / 'run'}",
            f"table={tmp_path / 't.csv'}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    assert f"{path}:2" in proc.stderr and "101" in proc.stderr
    assert not (tmp_path / "t.csv").exists()


# ---- query -----------------------------------------------------------------------------------


def write_table(path: Path, with_costs: bool = True, score: str = "score") -> Path:
    rng = np.random.default_rng(0)
    idx = rng.choice(SPACE.size, 500, replace=False)
    with open(path, "w") as f:
        f.write(f"arch,{score}" + (",flops_M,params_M,latency_ms\n" if with_costs else "\n"))
        for i in idx:
            arch = SPACE.from_index(int(i))
            c = SPACE.cost(arch)
            extra = f",{c.flops_M},{c.params_M},{c.flops_M / 10 + 1}" if with_costs else ""
            f.write(f"{SPACE.to_str(arch)},{rng.normal(90, 3)}{extra}\n")
    return path


def test_query_meets_every_budget(tmp_path: Path) -> None:
    table = write_table(tmp_path / "t.csv")
    cfg = compose_cfg(
        "query",
        tmp_path,
        [f"table={table}", "top_k=7", "max_flops_M=60", "max_params_M=0.5", "max_latency_ms=6"],
    )
    out = query.run(cfg)
    assert 1 <= len(out["top"]) <= 7
    for r in out["top"]:
        assert r["flops_M"] <= 60 and r["params_M"] <= 0.5 and r["latency_ms"] <= 6
    scores = [r["score"] for r in out["top"]]
    assert scores == sorted(scores, reverse=True)
    with open(table) as f:
        allowed = [
            float(r["score"])
            for r in csv.DictReader(f)
            if float(r["flops_M"]) <= 60
            and float(r["params_M"]) <= 0.5
            and float(r["latency_ms"]) <= 6
        ]
    assert scores[0] == max(allowed)
    exported = json.loads(Path(out["export_json"]).read_text())
    assert exported["arch"] == out["top"][0]["arch"]
    assert SPACE.to_str(tuple(exported["op_indices"])) == exported["arch"]
    assert yaml.safe_load(Path(out["export_yaml"]).read_text())["ops"] == exported["ops"]
    # self-describing: the space, the data the costs are for, the score and costs, the version
    space = instantiate(cfg.space)
    assert exported["space"] == {"name": "nb201", "config": space.config()}
    assert exported["data"] == {"name": "digits", "input_shape": [1, 8, 8], "num_classes": 10}
    assert exported["score"] == scores[0] and exported["flops_M"] == out["top"][0]["flops_M"]
    assert exported["version"] and exported["git"] and exported["score_column"] == "score"
    assert Path(out["pareto_plot"]).stat().st_size > 0


def test_query_budget_nothing_meets(tmp_path: Path) -> None:
    table = write_table(tmp_path / "t.csv")
    cfg = compose_cfg("query", tmp_path, [f"table={table}", "max_flops_M=1"])
    with pytest.raises(
        query.BudgetError, match=r"max_flops_M=1: smallest flops_M in the table is 7\.78"
    ):
        query.run(cfg)
    assert not (tmp_path / "out").exists()
    proc = subprocess.run(
        [
            sys.executable,
            "scripts/query.py",
            f"table={table}",
            "max_params_M=0.01",
            f"hydra.run.dir={tmp_path / 'run'}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0 and "max_params_M=0.01" in proc.stderr


def test_query_zero_shot_table_without_costs(tmp_path: Path) -> None:
    table = write_table(tmp_path / "z.csv", with_costs=False, score="wrcor")
    cfg = compose_cfg(
        "query", tmp_path, [f"table={table}", "score_column=wrcor", "max_flops_M=100"]
    )
    out = query.run(cfg)
    arch = SPACE.parse(out["best"]["arch"])
    # costs for the configured data and space (digits by default: 1x8x8 images, 1 cell per stage)
    space = NB201Space(C=cfg.space.C, N=cfg.space.N)
    assert out["best"]["flops_M"] == pytest.approx(space.cost(arch, (1, 8, 8)).flops_M)
    assert all(r["flops_M"] <= 100 for r in out["top"])
    cfg = compose_cfg(
        "query", tmp_path, [f"table={table}", "score_column=wrcor", "max_latency_ms=3"]
    )
    with pytest.raises(DataError, match="latency_ms"):
        query.run(cfg)


def test_pareto_front() -> None:
    score = np.array([1.0, 3.0, 2.0, 3.0, 0.5])
    cost = np.array([1.0, 2.0, 2.0, 5.0, 0.5])
    assert pareto_front(score, cost).tolist() == [4, 0, 1]


def test_non_finite_predictions_write_no_table(tmp_path: Path, monkeypatch) -> None:
    samples = write_samples(tmp_path / "s.csv", n=20)
    cfg = compose_cfg("fit", tmp_path, [f"samples={samples}", "predictor=ridge"])
    real = fit.predict_all

    def diverged(*args, **kwargs):
        scores = real(*args, **kwargs)
        scores[7] = float("nan")
        return scores

    monkeypatch.setattr(fit, "predict_all", diverged)
    with pytest.raises(FloatingPointError, match="1 non-finite scores"):
        fit.run(cfg)
    assert not (tmp_path / "out" / "table.csv").exists()


@pytest.mark.slow
def test_sigkill_mid_fit_leaves_the_old_table_whole(tmp_path: Path) -> None:
    samples = write_samples(tmp_path / "s.csv", n=60)
    table = tmp_path / "table.csv"
    common = [f"samples={samples}", f"table={table}"]
    fit.run(compose_cfg("fit", tmp_path, [*common, "predictor=ridge"]))
    before = table.read_bytes()
    run_log = tmp_path / "run" / "fit.log"
    args = [
        *common,
        "predictor.epochs=100000",
        "predictor.patience=100000",
        f"hydra.run.dir={run_log.parent}",
    ]
    # killed once the log says the fit has begun (100,000 epochs: it is still fitting then), not
    # after a fixed time, which under load could land before the fit started
    kill_when("fit.py", args, lambda: run_log.is_file() and "fitting " in run_log.read_text())
    assert table.read_bytes() == before  # killed mid-fit: the earlier table is untouched
    out = fit.run(
        compose_cfg("fit", tmp_path, [*common, "predictor.ensemble=1", "predictor.epochs=20"])
    )
    rows = list(csv.DictReader(open(out["table"])))
    assert len(rows) == SPACE.size == len({r["arch"] for r in rows})


def test_same_seed_same_table(tmp_path: Path) -> None:
    samples = write_samples(tmp_path / "s.csv", n=30)
    tables = []
    for name in ("a", "b"):
        cfg = compose_cfg(
            "fit",
            tmp_path / name,
            [f"samples={samples}", "predictor.ensemble=1", "predictor.epochs=5"],
        )
        tables.append(Path(fit.run(cfg)["table"]).read_bytes())
    assert tables[0] == tables[1]


def test_query_takes_only_the_table_its_fit_json_vouches_for(tmp_path: Path) -> None:
    """nas-fit writes fit.json last with its outputs' digests: a table left by a fit that did not
    finish (no record), or changed since (another digest), is refused, exit 2 like bad input."""
    samples = write_samples(tmp_path / "s.csv")
    out = fit.run(compose_cfg("fit", tmp_path, [f"samples={samples}", "predictor=ridge"]))
    table, record = Path(out["table"]), Path(out["table"]).parent / "fit.json"
    outputs = json.loads(record.read_text())["outputs"]
    assert outputs["table"]["file"] == "table.csv" and len(outputs["checkpoint"]["sha256"]) == 64
    query.run(compose_cfg("query", tmp_path / "q1", [f"table={table}"]))
    lines = table.read_text().splitlines(keepends=True)
    first = lines[1].split(",")
    lines[1] = ",".join([first[0], first[1], str(float(first[2]) + 1), *first[3:]])
    table.write_text("".join(lines))  # one score edited by hand
    with pytest.raises(DataError, match="not the table that .*fit.json records"):
        query.run(compose_cfg("query", tmp_path / "q2", [f"table={table}"]))
    record.unlink()  # what a fit killed between the table and its record leaves
    with pytest.raises(DataError, match="no fit.json beside it"):
        query.run(compose_cfg("query", tmp_path / "q3", [f"table={table}"]))
    query.run(compose_cfg("query", tmp_path / "q4", [f"table={table}", "require_record=false"]))


def test_query_reads_the_space_its_fit_recorded(tmp_path: Path) -> None:
    """`space=` is given once, to nas-fit: the query builds the space fit.json records; an explicit,
    different space on the query's command line is refused with both named."""
    samples = write_samples(tmp_path / "s.csv")
    fit_over = [f"samples={samples}", "predictor=ridge", "space.C=4", "space.N=1"]
    table = fit.run(compose_cfg("fit", tmp_path, fit_over))["table"]
    out = query.run(compose_cfg("query", tmp_path / "q", [f"table={table}"]), overrides=[])
    exported = json.loads(Path(out["export_json"]).read_text())
    assert exported["space"] == {"name": "nb201", "config": {"C": 4, "N": 1}}
    explicit = ["space.C=8"]
    cfg = compose_cfg("query", tmp_path / "q2", [f"table={table}", *explicit])
    with pytest.raises(DataError, match=r"records space nb201 .*space\.C=8"):
        query.run(cfg, overrides=explicit)

"""The whole pipeline end to end on the tiny preset: train -> evaluate -> fit -> query -> retrain."""

import csv
import json
import logging
import statistics

import pytest
import torch
from hydra import initialize_config_dir

from predictor.graph import edge_mask, full_edges
from predictor.stages.pipeline import covers_space, run
from supernet.classes import class_key
from supernet.space import NB201Space
from supernet.stages import retrain
from tests.conftest import CONF, make_cfg

FAST_FIT = ["predictor.ensemble=2", "predictor.epochs=30"]
SPACE = NB201Space()


class Messages(logging.Handler):
    """Every log record's message, as caplog's text holds them."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One run of the default stages (train, evaluate, zeroshot, fit, query) on the tiny preset,
    shared by the tests that only read it: its config, output folder, results and log text
    (caught at INFO on the root logger, as `caplog.at_level(logging.INFO)` catches it)."""
    out = tmp_path_factory.mktemp("run")
    cfg = make_cfg("run", out, FAST_FIT)
    root, messages = logging.getLogger(), Messages()
    level = root.level
    root.addHandler(messages)
    root.setLevel(logging.INFO)
    try:
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            results = run(cfg)
    finally:
        root.removeHandler(messages)
        root.setLevel(level)
    return cfg, out, results, "\n".join(messages.lines)


def test_pipeline_end_to_end(tiny_run, tmp_path):
    _, run_dir, results, log = tiny_run
    # what a log file holds: a line per stage with its time, progress of the long loops
    for line in (
        "stage train: done in",
        "training the supernet (epochs): 1/1 (100%)",
        "evaluating subnets: 12/12 (100%)",
        "stage query: done in",
    ):
        assert line in log, line
    assert set(results) >= {"train", "evaluate", "fit", "query"}
    subnets = list(csv.DictReader(open(run_dir / "subnets.csv")))
    assert len(subnets) == 12  # debug=tiny evaluates 12 archs
    table = list(csv.DictReader(open(run_dir / "table.csv")))
    assert len(table) == 15_625 == len({r["arch"] for r in table})
    scores = [float(r["score"]) for r in table]
    assert scores == sorted(scores, reverse=True)
    # digits are 1x8x8: the table's costs are for that input, not CIFAR's
    assert min(float(r["flops_M"]) for r in table) < 1.0
    best = json.loads((run_dir / "best_arch.json").read_text())
    # the top-1 class's cheapest member: isomorphic to the table's first row, no dearer
    assert class_key(SPACE, SPACE.parse(best["arch"])) == class_key(
        SPACE, SPACE.parse(table[0]["arch"])
    )
    assert best["flops_M"] <= float(table[0]["flops_M"])
    check_top_rows(results["query"]["top"], table)
    for name in (
        "train_run.json",
        "evaluate_run.json",
        "fit.json",
        "pareto.png",
        "query_run.json",
    ):
        assert (run_dir / name).is_file(), name
    summary = (run_dir / "summary.md").read_text()
    assert results["summary"] in summary
    for stage in ("train", "evaluate", "fit", "query"):
        assert f"{stage} " in summary and stage in results["stage_s"]
    assert "ref 0" in summary and "Top archs" in summary
    # the guard speaks exactly when the tiny run's answer is noise
    refs = [v for k, v in results["train"]["metrics"].items() if k.startswith("val/acc/")]
    no_conv = sum(not r["live_conv"] for r in results["query"]["top"])
    noise = statistics.median(refs) < 32.5 or 2 * no_conv >= len(results["query"]["top"])
    assert ("WARNING" in summary) == noise == bool(results["warnings"])

    # the exported arch retrains standalone from its JSON file
    rcfg = make_cfg("retrain", tmp_path / "retrain", [f"arch={run_dir / 'best_arch.json'}"])
    out = retrain.run(rcfg)
    assert out["summary"]["arch"] == best["arch"]
    assert 0.0 <= out["summary"]["test_acc"] <= 100.0


def test_a_limited_zero_shot_run_is_not_given_to_fit(tiny_run):
    # debug=tiny scores 40 archs: too few for features, so fit runs without them (moved here
    # from tests/test_pipeline_zeroshot.py: the run it checks is test_pipeline_end_to_end's)
    cfg, run_dir, results, _ = tiny_run
    stages = ["train", "evaluate", "zeroshot", "fit", "query"]
    assert list(cfg.stages) == stages, "the shared run no longer has these stages: run them here"
    assert results["zeroshot"]["total"] == 40
    assert not covers_space(cfg, results["zeroshot"])
    fitted = json.loads((run_dir / "fit.json").read_text())
    assert fitted["config"]["features"] is None and fitted["metrics"]["fit/features"] == []


def check_top_rows(top: list[dict], table: list[dict]) -> None:
    """The query's rows: one per isomorphism class (dead edges ignored), each its class's cheapest
    member with the class's size, and `live_conv` as the predictor's own pruning sees it."""
    classes: dict[str, list[dict]] = {}
    for r in table:
        classes.setdefault(class_key(SPACE, SPACE.parse(r["arch"])), []).append(r)
    keys = [class_key(SPACE, SPACE.parse(r["arch"])) for r in top]
    assert len(keys) == len(set(keys)) == len(top) > 1
    edges = full_edges(SPACE)
    conv_nodes = lambda a: {e + 1 for e, o in enumerate(a) if "conv" in SPACE.ops[o]}  # noqa: E731
    for r, k in zip(top, keys):
        members = classes[k]
        assert r["class_size"] == len(members) and r.get("dead_ops", 0) == 0
        assert r["flops_M"] == min(float(m["flops_M"]) for m in members)
        assert r["score"] == max(float(m["score"]) for m in members)
        arch = SPACE.parse(r["arch"])
        kept = {n for (s, t), m in zip(edges, edge_mask(SPACE, arch)) if m for n in (s, t)}
        assert r["live_conv"] == bool(conv_nodes(arch) & kept), r["arch"]


def test_stage_sections_override_one_stage(tmp_path):
    cfg = make_cfg(
        "run",
        tmp_path,
        [*FAST_FIT, "stages=[train,evaluate]", "evaluator.num_archs=3", "evaluator.bn=batch"],
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            run(cfg)
        assert torch.get_num_threads() == cfg.num_threads == 1  # run.yaml's one thread
    finally:
        torch.set_num_threads(threads)
    rows = list(csv.DictReader(open(tmp_path / "subnets.csv")))
    assert len(rows) == 3 and {r["bn"] for r in rows} == {"batch"}


def test_pipeline_on_the_chain_space(tmp_path):
    """The same scripts, the other search space (its tiny preset: 1,764 archs)."""
    cfg = make_cfg(
        "run",
        tmp_path,
        [
            *FAST_FIT,
            "space=chain_tiny",
            "evaluator.num_archs=20",
        ],
    )
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        results = run(cfg)
    table = list(csv.DictReader(open(tmp_path / "table.csv")))
    assert len(table) == 1764 == len({r["arch"] for r in table})
    assert results["query"]["best"]["arch"] == table[0]["arch"]
    assert "|" in table[0]["arch"] and "~" not in table[0]["arch"]  # chain strings, not NB201's

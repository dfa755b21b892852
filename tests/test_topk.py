"""The top-k as shown: liveness, dead edges, dedup by isomorphism class, the sanity guard, the
summary and log-file progress."""

import logging
import random
import time

import numpy as np
import pytest

from predictor.graph import edge_mask, full_edges
from predictor.summary import build_summary, read_last_metrics, reference_accuracies
from predictor.topk import dedup_classes, sanity_warnings
from supernet.chain_space import ChainSpace
from supernet.classes import class_key, live_conv, live_edges, prune_dead
from supernet.progress import Heartbeat, LogProgress
from supernet.space import NB201Space

SPACE = NB201Space(C=4, N=1)
ARCHS = list(SPACE.all_archs())
P = SPACE.parse


def test_live_edges_agree_with_the_predictors_pruning() -> None:
    edges = full_edges(SPACE)
    for arch in ARCHS:
        kept = {n for (s, t), m in zip(edges, edge_mask(SPACE, arch)) if m for n in (s, t)}
        assert live_edges(SPACE, arch) == tuple(e + 1 in kept for e in range(6)), arch


@pytest.mark.parametrize(
    "arch, live, conv",
    [
        # the top row: the output is a 3x3 average pool of the input
        ("|none~0|+|none~0|none~1|+|avg_pool_3x3~0|none~1|none~2|", "000100", False),
        # a conv into node 1, which feeds nothing: a dead end
        ("|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|", "000100", False),
        # a conv on a zero node (node 2 gets only `none`)
        (
            "|skip_connect~0|+|none~0|none~1|+|none~0|skip_connect~1|nor_conv_3x3~2|",
            "100010",
            False,
        ),
        ("|nor_conv_1x1~0|+|none~0|none~1|+|none~0|skip_connect~1|none~2|", "100010", True),
        ("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|", "000000", False),
    ],
)
def test_liveness_examples(arch: str, live: str, conv: bool) -> None:
    a = P(arch)
    assert live_edges(SPACE, a) == tuple(c == "1" for c in live)
    assert live_conv(SPACE, a) is conv
    pruned = prune_dead(SPACE, a)
    assert all(SPACE.ops[o] == "none" for o, x in zip(pruned, live) if x == "0")
    assert class_key(SPACE, pruned) == class_key(SPACE, a)
    assert SPACE.cost(pruned).flops_M <= SPACE.cost(a).flops_M


def test_dedup_shows_each_class_once_by_its_cheapest_member() -> None:
    rng = np.random.default_rng(0)
    score = rng.normal(size=len(ARCHS))
    costs = np.array([[c.flops_M, c.params_M] for c in map(SPACE.cost, ARCHS)])
    rows = dedup_classes(SPACE, ARCHS, score, costs[:, 0], costs[:, 1])
    keys = [class_key(SPACE, ARCHS[r.index]) for r in rows]
    assert len(keys) == len(set(keys)) == 6_285  # NB201's 6,466, merged across dead edges
    assert sum(r.size for r in rows) == len(ARCHS)
    best = [score[r.best] for r in rows]
    assert best == sorted(best, reverse=True) and best[0] == score.max()
    by_key: dict[str, list[int]] = {}
    for i, a in enumerate(ARCHS):
        by_key.setdefault(class_key(SPACE, a), []).append(i)
    for r, k in zip(rows, keys):
        members = by_key[k]
        assert r.size == len(members) and r.best in members
        assert costs[r.index, 0] == costs[members, 0].min()
        assert r.dead == 0  # every pruned form is in the space
        assert score[r.best] == score[members].max()
    # the duplicates: archs that differ only on dead edges share one row
    a = P("|nor_conv_3x3~0|+|none~0|none~1|+|avg_pool_3x3~0|none~1|none~2|")
    b = P("|none~0|+|none~0|none~1|+|avg_pool_3x3~0|none~1|none~2|")
    assert class_key(SPACE, a) == class_key(SPACE, b)


def test_dedup_respects_budgets_and_top_k() -> None:
    score = np.arange(len(ARCHS), dtype=float)
    flops = np.array([SPACE.cost(a).flops_M for a in ARCHS])
    ok = flops <= np.median(flops)
    rows = dedup_classes(SPACE, ARCHS, score, flops, flops, ok, top_k=5)
    assert len(rows) == 5 and all(ok[r.index] and ok[r.best] for r in rows)


def test_chain_space_has_no_dead_layers() -> None:
    space = ChainSpace(widths=(8, 16), layers=(2, 2), strides=(1, 2))
    arch = space.sample(random.Random(0))
    assert all(live_edges(space, arch)) and prune_dead(space, arch) == arch
    assert class_key(space, arch) == space.iso_key(arch)


def test_sanity_warnings() -> None:
    live = [{"live_conv": True}] * 10
    dead = [{"live_conv": False}] * 6 + [{"live_conv": True}] * 4
    assert sanity_warnings({"ref 0": 85.0, "ref 3": 10.0}, 10, live) == []
    # the first build's 30-epoch supernet: conv cells near chance, the pooling-only cell above
    refs = {"ref 0": 21.1, "ref 1": 15.0, "ref 2": 38.0, "ref 3": 10.4}
    assert "near chance" in sanity_warnings(refs, 10, live)[0]
    (w,) = sanity_warnings({"ref 0": 14.0, "ref 1": 11.0}, 10, live)
    assert "near chance" in w and "14.0%" in w
    (w,) = sanity_warnings(None, 10, dead)
    assert "6 of the top 10" in w
    assert len(sanity_warnings({"ref 0": 12.0}, 10, dead)) == 2


def test_summary_names_stages_refs_tau_and_warns(tmp_path) -> None:
    metrics = tmp_path / "metrics.csv"
    metrics.write_text(
        "epoch,step,val/acc/0,val/acc/1,train/loss\n0,9,12.5,,2.3\n0,9,,11.0,\n1,19,13.0,10.5,\n"
    )
    ref = reference_accuracies(read_last_metrics(metrics))
    assert ref == {"ref 0": 13.0, "ref 1": 10.5}
    top = [
        {"arch": "a", "score": 1.0, "flops_M": 0.5, "params_M": 0.1, "class_size": 3,
         "live_conv": False},
    ]  # fmt: skip
    text, warnings = build_summary(
        tmp_path, {"train": 61.0, "fit": 5.0}, ref, 10, {"fit/samples": 300}, top
    )
    assert len(warnings) == 2 and "WARNING" in text
    assert "train 1 min 01 s" in text and "ref 0 13.0%" in text
    assert "no finite `fit/heldout_tau`" in text and "\n1  a     " in text
    text, warnings = build_summary(
        tmp_path,
        {"fit": 5.0},
        None,
        10,
        {"fit/heldout_tau": 0.41},
        [{**top[0], "live_conv": True}],
    )
    assert warnings == [] and "WARNING" not in text and "**0.410**" in text
    fused = {"fit/heldout_tau": 0.7, "fit/vote_with": ["params_M", "wrcor"], "fit/trust": 0.84}
    text, warnings = build_summary(
        tmp_path, {"fit": 5.0}, None, 10, {**fused, "fit/target": "loss"}, []
    )
    assert warnings == [] and "(weight 0.84" in text and "params_M, wrcor" in text
    assert "subnets (-loss): held-out" in text  # what the fit was fitted to
    text, warnings = build_summary(
        tmp_path, {"fit": 5.0}, None, 10, {**fused, "fit/trust": 0.0}, []
    )
    assert len(warnings) == 1 and "added nothing" in warnings[0] and "WARNING" in text
    weights = {"predicted": 0.84, "params_M": 0.9, "wrcor": 0.7}
    text, _ = build_summary(
        tmp_path, {"fit": 5.0}, None, 10, {**fused, "fit/weights": weights}, []
    )
    assert (
        "each weighed by its agreement, squared: predicted 0.84, params_M 0.90, wrcor 0.70" in text
    )


def test_progress_logs_lines_without_a_terminal(caplog) -> None:
    log = logging.getLogger("test.progress")
    with caplog.at_level(logging.INFO, logger="test.progress"):
        with LogProgress("evaluating subnets", 5, log, completed=1, every_s=0.0, bar=False) as p:
            for _ in range(4):
                p.advance()
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("evaluating subnets: 2/5 (40%)") and "left" in lines[0]
    assert lines[-1].startswith("evaluating subnets: 5/5 (100%)")
    assert len(lines) == 4  # 2/5, 3/5, 4/5 as they go, then the end


def test_heartbeat_logs_while_the_body_runs(caplog) -> None:
    log = logging.getLogger("test.heartbeat")
    with caplog.at_level(logging.INFO, logger="test.heartbeat"):
        with Heartbeat("stage fit", log, every_s=0.05):
            time.sleep(0.3)
        n = len(caplog.records)
        time.sleep(0.15)
        with Heartbeat("stage off", log, every_s=0.05, enabled=False):
            time.sleep(0.15)
    assert n >= 2 and caplog.records[0].getMessage().startswith("stage fit: still running")
    assert len(caplog.records) == n  # stopped on exit; disabled logs nothing


def test_dedup_flags_dead_ops_when_the_pruned_form_is_missing() -> None:
    archs = [
        P("|nor_conv_3x3~0|+|none~0|none~1|+|avg_pool_3x3~0|none~1|none~2|"),
        P("|nor_conv_1x1~0|+|none~0|none~1|+|avg_pool_3x3~0|none~1|none~2|"),
    ]
    cost = np.array([SPACE.cost(a).flops_M for a in archs])
    (row,) = dedup_classes(SPACE, archs, np.array([2.0, 1.0]), cost, cost)
    assert (row.index, row.best, row.size, row.dead, row.live_conv) == (1, 0, 2, 1, False)

"""The fused ranking: normal scores, the soft minimum, what a cell computes, the pruned ridge."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import kendalltau

from predictor.fusion import agreement, fuse, fuse_weighted, normal_scores, vote_columns
from predictor.io import read_features
from predictor.module import RidgePredictor, predictor_from_state
from predictor.table import all_ops, cost_columns
from supernet.classes import class_index, class_representatives, live_index
from supernet.space import NB201Space
from supernet.utils import DataError

SPACE = NB201Space()
NONE, SKIP, C1, C3, POOL = range(5)
# edge order 1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2: node 1 feeds nothing when 3<-1 and 2<-1 are none
DEAD_C3 = (C3, C3, NONE, SKIP, NONE, C1)  # the conv on 1<-0 is dead
PRUNED = (NONE, C3, NONE, SKIP, NONE, C1)


def test_normal_scores_keep_order_and_ties() -> None:
    z = normal_scores([3.0, 1.0, 2.0, 2.0, 10.0])
    assert z[1] < z[2] == z[3] < z[0] < z[4]
    assert normal_scores([5.0, 1.0, 3.0]).sum() == pytest.approx(0.0, abs=1e-12)  # symmetric
    with pytest.raises(ValueError, match="NaN"):
        normal_scores([1.0, float("nan")])


def test_softmin_ranks_by_the_worst_signal() -> None:
    # arch 0 is top in one signal and bottom in the other; arch 1 is second in both
    a = np.array([10.0, 9.0, 5.0, 1.0, 0.0])
    b = np.array([0.0, 9.0, 5.0, 1.0, 10.0])
    soft, mean = fuse({"a": a, "b": b}), fuse({"a": a, "b": b}, rule="mean")
    assert np.argmax(soft) == 1 and soft[1] > soft[0]
    assert mean[0] == pytest.approx(mean[4])
    with pytest.raises(ValueError, match="differ in length"):
        fuse({"a": a, "b": b[:3]})
    with pytest.raises(ValueError, match="rule"):
        fuse({"a": a}, rule="max")


@pytest.mark.parametrize("rule", ["softmin", "mean"])
def test_fusion_beats_each_input_when_errors_are_independent(rule: str) -> None:
    rng = np.random.default_rng(0)
    truth = rng.standard_normal(4000)
    # three signals of different quality and error shape: Gaussian, heavy-tailed, one-sided
    signals = {
        "gauss": truth + 0.8 * rng.standard_normal(4000),
        "heavy": truth + 0.6 * rng.standard_t(2, 4000),
        "optimistic": truth + rng.exponential(0.8, 4000),
    }
    fused = kendalltau(fuse(signals, rule=rule), truth)[0]
    best_input = max(kendalltau(s, truth)[0] for s in signals.values())
    assert fused > best_input + 0.03


def test_live_index_and_costs_of_what_the_cell_computes() -> None:
    live = live_index(SPACE)
    assert live[SPACE.index(DEAD_C3)] == SPACE.index(PRUNED)
    assert live[SPACE.index(PRUNED)] == SPACE.index(PRUNED)
    costs = cost_columns(SPACE)
    # the dead conv is counted by the string's params, not by the pruned arch's
    assert costs[SPACE.index(DEAD_C3), 1] > costs[live[SPACE.index(DEAD_C3)], 1]
    assert len(np.unique(live)) == 9445  # distinct pruned cells of NB201


def test_class_lookups_are_cached_per_cell_structure() -> None:
    """live_index / class_index are built once per (kind, ops, edges): a network of other width
    shares them, a space with other ops gets its own, and a caller's writes change nothing."""
    classes = class_index(SPACE)
    assert np.array_equal(class_index(NB201Space(C=8, N=1)), classes)

    class Fewer(NB201Space):
        ops = ("none", "skip_connect", "nor_conv_3x3")

    fewer = Fewer()
    assert fewer.size == 3**6 and len(class_index(fewer)) == len(live_index(fewer)) == 3**6
    mine = class_index(SPACE)
    mine[:] = -1
    assert np.array_equal(class_index(SPACE), classes)


def test_one_feature_row_per_class_is_enough(tmp_path) -> None:
    classes = class_index(SPACE)
    assert classes[SPACE.index(DEAD_C3)] == classes[SPACE.index(PRUNED)]
    first = np.unique(classes)
    path = tmp_path / "zs.csv"
    with open(path, "w") as f:
        f.write("arch,wrcor\n")
        for i in first:
            f.write(f"{SPACE.to_str(SPACE.from_index(int(i)))},{i}\n")
    names, values = read_features(path, SPACE, None, classes)
    assert names == ["wrcor"] and np.array_equal(values[:, 0], classes.astype(float))
    from supernet.utils import DataError

    with pytest.raises(DataError, match="every arch needs a row"):
        read_features(path, SPACE)  # without classes, a missing arch is refused as before


def test_pruned_ridge_predicts_what_the_cell_computes() -> None:
    rng = np.random.default_rng(0)
    idx = rng.choice(SPACE.size, 200, replace=False)
    ops = all_ops(SPACE)
    y = 60 + 5 * (ops[idx] == C3).sum(1).double() + torch.from_numpy(rng.normal(size=200))
    plain, pruned = RidgePredictor(SPACE), RidgePredictor(SPACE, prune=True)
    plain.fit(ops[idx], y)
    pruned.fit(ops[idx], y)
    pair = torch.tensor([DEAD_C3, PRUNED])
    a, b = pruned.predict(pair)
    assert float(a) == pytest.approx(float(b))
    a, b = plain.predict(pair)
    assert float(a) != pytest.approx(float(b))  # the plain ridge pays for the dead conv
    restored = predictor_from_state(SPACE, pruned.state_dict())
    assert torch.equal(restored.predict(pair), pruned.predict(pair))


def test_class_representatives_score_each_function_once() -> None:
    reps = class_representatives(SPACE)
    classes = class_index(SPACE)
    assert len(reps) == len(np.unique(classes)) == 6285
    assert len({classes[SPACE.index(a)] for a in reps}) == len(reps)  # one per class
    live = live_index(SPACE)
    assert all(live[SPACE.index(a)] == SPACE.index(a) for a in reps)  # each already pruned


def test_auto_vote_takes_wrcor_and_meco_or_live_params_and_either() -> None:
    costs = cost_columns(SPACE)
    names = ["wrcor", "naswot", "params", "vote"]
    feats = (names, np.random.default_rng(0).random((SPACE.size, len(names))))
    cols = vote_columns("auto", SPACE, costs, feats)
    assert list(cols) == ["params_M", "wrcor"]
    assert np.array_equal(cols["params_M"], costs[live_index(SPACE), 1])  # dead ops cost nothing
    with_meco = (["meco", *names], np.random.default_rng(1).random((SPACE.size, 5)))
    assert list(vote_columns("auto", SPACE, costs, with_meco)) == ["wrcor", "meco"]  # no params
    only_meco = (["meco", "naswot"], with_meco[1][:, :2])
    assert list(vote_columns("auto", SPACE, costs, only_meco)) == ["params_M", "meco"]
    no_wrcor = (["naswot", "flops"], feats[1][:, :2])
    assert list(vote_columns("auto", SPACE, costs, no_wrcor)) == ["params_M", "naswot"]
    assert vote_columns("auto", SPACE, None, feats) == {}  # a space too large to list: no vote
    assert vote_columns([], SPACE, costs, feats) == {}
    assert vote_columns(None, SPACE, costs, feats) == {}
    with pytest.raises(DataError, match="no column"):
        vote_columns(["nope"], SPACE, costs, feats)
    with pytest.raises(DataError, match="too large to list"):
        vote_columns(["params_M"], SPACE, None, feats)


def test_a_prediction_that_disagrees_with_the_free_signals_drops_out() -> None:
    rng = np.random.default_rng(0)
    truth = rng.standard_normal(3000)
    free = {
        "w": truth + 0.7 * rng.standard_normal(3000),
        "p": truth + 0.7 * rng.standard_normal(3000),
    }
    good = truth + 0.7 * rng.standard_normal(3000)
    bad = -0.3 * truth + rng.standard_normal(3000)  # consistent with itself, wrong about the truth
    alone = fuse(free)
    with_bad = fuse({"g": bad, **free}, trust="g")
    assert np.allclose(with_bad, alone)  # weight 0: exactly the free fusion
    assert fuse_weighted({"g": bad, **free}, trust="g")[1] == {"g": 0.0, "w": 1.0, "p": 1.0}
    assert kendalltau(fuse({"g": bad, **free}), truth)[0] < kendalltau(alone, truth)[0] - 0.05
    z = np.stack([normal_scores(c) for c in (good, *free.values())], axis=1)
    assert 0.7 < agreement(z, 0) <= 1.0  # its loading on the common factor (true: 0.82)
    trusted, weights = fuse_weighted({"g": good, **free}, trust="g")
    assert weights["g"] == pytest.approx(agreement(z, 0) ** 2)  # its reliability: loading squared
    assert kendalltau(trusted, truth)[0] > kendalltau(alone, truth)[0]
    with pytest.raises(ValueError, match="trust"):
        fuse(free, trust="g")


def test_with_three_signals_each_weighs_its_reliability_and_a_weak_one_counts_less() -> None:
    rng = np.random.default_rng(1)
    truth = rng.standard_normal(4000)
    columns = {
        "g": truth + 0.8 * rng.standard_normal(4000),  # the prediction
        "strong": truth + 0.6 * rng.standard_normal(4000),
        "weak": truth + 1.2 * rng.standard_normal(4000),
    }
    score, weights = fuse_weighted(columns, trust="g")
    z = np.stack([normal_scores(c) for c in columns.values()], axis=1)
    assert [weights[c] for c in columns] == pytest.approx([agreement(z, j) ** 2 for j in range(3)])
    assert weights["strong"] > weights["g"] > weights["weak"]  # true loadings 0.86, 0.78, 0.64
    tau = lambda v: kendalltau(v, truth)[0]  # noqa: E731
    assert tau(score) > tau(fuse(columns)) + 0.01  # every signal weighing 1
    assert tau(score) > max(tau(c) for c in columns.values())  # beats each of its inputs
    two, two_weights = fuse_weighted({"g": columns["g"], "weak": columns["weak"]}, trust="g")
    assert two_weights["weak"] == 1.0  # two columns: one factor cannot tell them apart

import pytest

from supernet.metrics import by_class, precision_at, ranking_report

# A hand-made truth of 10 archs in 5 classes (class = first letter).
TRUTH = {
    "a1": 90.0,
    "a2": 91.0,
    "b1": 80.0,
    "b2": 79.0,
    "c1": 70.0,
    "c2": 71.0,
    "d1": 60.0,
    "d2": 61.0,
    "e1": 10.0,
    "e2": 10.5,
}


def test_perfect_and_reversed_rankings():
    perfect = ranking_report(dict(TRUTH), TRUTH, iso_key=lambda a: a[0])
    assert perfect["kendall"] == pytest.approx(1.0) and perfect["spearman"] == pytest.approx(1.0)
    assert perfect["top1_true_acc"] == 91.0 and perfect["top10_true_acc"] == pytest.approx(62.25)
    assert perfect["n_classes"] == 5 and perfect["kendall_classes"] == pytest.approx(1.0)
    reverse = ranking_report({k: -v for k, v in TRUTH.items()}, TRUTH)
    assert reverse["kendall"] == pytest.approx(-1.0) and reverse["top1_true_acc"] == 10.0


def test_hand_computed_kendall_and_precision():
    # swap the two best: 1 discordant pair out of 45 -> tau = (44 - 1) / 45
    score = dict(TRUTH, a1=91.0, a2=90.0)
    assert ranking_report(score, TRUTH)["kendall"] == pytest.approx(43 / 45)
    # top 10% = 1 arch: ours is a1, the truth's is a2
    assert precision_at(score, TRUTH, 0.1) == 0.0
    assert precision_at(score, TRUTH, 0.2) == 1.0


def test_class_means_and_partial_overlap():
    assert by_class(TRUTH, lambda a: a[0])["a"] == pytest.approx(90.5)
    report = ranking_report({"a1": 1.0, "b1": 0.0, "zz": 5.0}, TRUTH)
    assert report["n"] == 2  # archs missing from the truth are ignored
    with pytest.raises(ValueError, match="only 1 archs"):
        ranking_report({"a1": 1.0}, TRUTH)

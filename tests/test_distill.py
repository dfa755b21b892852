import csv
import random

import pytest
import torch

from supernet.classes import class_representatives
from supernet.distill import RankDistillation, rank_distillation
from supernet.nb201_space import NB201Space
from supernet.stages.train import run
from supernet.utils import DataError
from tests.conftest import make_cfg

SPACE = NB201Space()


def class_scores(path, seed=0):
    """One row per class of same-function cells; `meco` counts 3x3 convs (+ noise), `wrcor`
    the opposite."""
    rng = random.Random(seed)
    rows = [
        {"arch": SPACE.to_str(a), "meco": a.count(3) + rng.random(), "wrcor": -a.count(3)}
        for a in class_representatives(SPACE)
    ]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, ["arch", "meco", "wrcor"])
        writer.writeheader()
        writer.writerows(rows)
    return str(path)


def test_ranking_loss_is_zero_when_the_losses_keep_the_order_and_pushes_back_otherwise(tmp_path):
    d = RankDistillation(SPACE, class_scores(tmp_path / "zs.csv"), margin=0.1)
    rich, poor = (3,) * 6, (1,) * 6  # all 3x3 convs (the score's favourite) / all skips
    assert d.score(rich) > d.score(poor)
    # the favoured path already has the lower loss by more than the margin: nothing to learn
    assert d.loss([rich, poor], torch.tensor([0.5, 0.7])).item() == 0.0
    # reversed: hinge = margin + gap, and its gradient lowers the favoured path's loss
    losses = torch.tensor([0.9, 0.6], requires_grad=True)
    loss = d.loss([rich, poor], losses)
    assert loss.item() == pytest.approx(0.1 + 0.3)
    loss.backward()
    assert losses.grad.tolist() == pytest.approx([1.0, -1.0])
    # archs of one class (they differ only on a dead edge) tie: no pair
    dead = SPACE.parse("|none~0|+|none~0|none~1|+|nor_conv_3x3~0|none~1|none~2|")
    same = SPACE.parse("|skip_connect~0|+|none~0|none~1|+|nor_conv_3x3~0|none~1|none~2|")
    assert d.loss([dead, same], torch.tensor([1.0, 0.0])).item() == 0.0


def test_bad_settings_are_refused_with_the_value(tmp_path):
    scores = class_scores(tmp_path / "zs.csv")
    assert rank_distillation(SPACE, None) is None
    with pytest.raises(DataError, match="weight=0"):
        RankDistillation(SPACE, scores, weight=0)
    with pytest.raises(DataError, match="paths=1"):
        RankDistillation(SPACE, scores, paths=1)
    with pytest.raises(DataError, match="naswot"):
        RankDistillation(SPACE, scores, column="naswot")
    empty = tmp_path / "empty.csv"
    empty.write_text("arch,meco\n")
    with pytest.raises(DataError, match="empty.csv: no data rows"):
        RankDistillation(SPACE, str(empty))


def test_training_with_distillation_logs_the_ranking_loss_and_records_it(tmp_path):
    scores = class_scores(tmp_path / "zs.csv")
    overrides = [f"supernet.distill.scores={scores}", "trainer.max_epochs=1"]
    result = run(make_cfg("train", tmp_path / "run", overrides))
    assert result["metrics"]["train/rank_loss"] >= 0.0
    hparams = torch.load(result["ckpt_path"], weights_only=True)["hyper_parameters"]
    assert hparams["distill"]["scores"] == scores and hparams["distill"]["paths"] == 2
    assert hparams["distill"]["classes_scored"] == len(class_representatives(SPACE))
    plain = run(make_cfg("train", tmp_path / "plain", ["trainer.max_epochs=1"]))
    assert "train/rank_loss" not in plain["metrics"]

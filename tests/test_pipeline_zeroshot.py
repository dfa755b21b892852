"""The pipeline's zero-shot stage: it scores every class, and fit fuses those scores only when the
file covers the space."""

import csv
import json
import random

import pytest
from hydra import initialize_config_dir

from predictor.stages.pipeline import covers_space, plan, reads_scores, run, stage_config
from supernet.classes import class_representatives
from supernet.space import NB201Space
from supernet.stages import zeroshot
from supernet.utils import DataError
from tests.conftest import CONF, make_cfg

FAST_FIT = ["predictor.ensemble=2", "predictor.epochs=30"]
SPACE = NB201Space()


def write_rows(path, fields, rows):
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def test_fit_fuses_a_zero_shot_file_that_covers_every_class(tmp_path):
    # a finished zero-shot file (one row per class, as `archs=classes` writes it): the stage
    # resumes it with nothing left to score, and fit takes it as features
    reps = class_representatives(SPACE)
    rng = random.Random(0)
    rows = [
        {
            "arch": SPACE.to_str(a),
            "wrcor": f"{rng.gauss(0, 1):.6g}",
            "meco": f"{rng.gauss(0, 1):.6g}",
            "seed": 0,
            "data": "digits",
        }
        for a in reps
    ]
    write_rows(tmp_path / "zeroshot.csv", ["arch", "wrcor", "meco", "seed", "data"], rows)
    samples = [{"arch": SPACE.to_str(a), "acc": f"{rng.uniform(20, 90):.2f}"} for a in reps[:24]]
    write_rows(tmp_path / "given.csv", ["arch", "acc"], samples)
    cfg = make_cfg(
        "run",
        tmp_path,
        [
            *FAST_FIT,
            "stages=[zeroshot,fit,query]",
            "zeroshot.limit=0",
            "zeroshot.bf16=false",  # the file above is an fp32 one (no bf16 column)
            f"fit.samples={tmp_path / 'given.csv'}",
        ],
    )
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        results = run(cfg)
    assert results["zeroshot"]["scored"] == 0 and results["zeroshot"]["total"] == len(reps)
    fitted = json.loads((tmp_path / "fit.json").read_text())
    assert fitted["config"]["features"] == str(tmp_path / "zeroshot.csv")
    assert fitted["metrics"]["fit/features"] == ["wrcor", "meco"]
    assert fitted["metrics"]["fit/vote_with"] == ["wrcor", "meco"]  # both: live params left out
    assert "zeroshot" in results["stage_s"]


def test_the_default_stages_score_zero_shot_with_meco_alone_on_digits(tmp_path):
    # make run drops WRCor on digits (4.5 min of CPU; conf/recipe/run/nb201_digits.yaml), not MeCo
    cifar = make_cfg("run", tmp_path, ["data=cifar10"], tiny=False)
    assert "zeroshot" in cifar.stages and zeroshot.plan(cifar) == (["wrcor", "meco"], [])
    digits = make_cfg("run", tmp_path, tiny=False)
    assert "zeroshot" in digits.stages and zeroshot.plan(digits) == (["meco"], [])
    back = make_cfg("run", tmp_path, ["zeroshot.proxies.wrcor={}"], tiny=False)
    assert zeroshot.plan(back) == (["wrcor", "meco"], [])


def test_covers_space_needs_the_whole_listing_and_no_limit(tmp_path):
    cfg = make_cfg("run", tmp_path, ["zeroshot.limit=0"])
    done = {"total": 6285, "archs": 6285}
    assert covers_space(cfg, done)
    assert not covers_space(cfg, {"total": 6000, "archs": 6285})  # a run cut short
    assert not covers_space(make_cfg("run", tmp_path), done)  # debug=tiny's limit
    listed = make_cfg("run", tmp_path, ["zeroshot.limit=0", "zeroshot.archs=mine.csv"])
    assert not covers_space(listed, done)  # a user's list of archs need not cover the space


def test_a_space_too_large_to_list_skips_the_zero_shot_stage(tmp_path):
    cfg = make_cfg("run", tmp_path, ["space=chain"])  # 20 layers: too many archs to list
    stages, swapped = plan(cfg)
    assert "zeroshot" not in stages and swapped
    assert "zeroshot" in plan(make_cfg("run", tmp_path))[0]


def test_bad_zero_shot_settings_stop_the_run_before_training(tmp_path):
    cfg = make_cfg("run", tmp_path, ["proxies=[wrcor]", "zeroshot.proxies.wrcor=null"])
    with pytest.raises(DataError, match="zeroshot.proxies.wrcor=\\{\\} turns it on"):
        plan(cfg)
    assert not any(tmp_path.iterdir())  # nothing trained, nothing written
    with pytest.raises(DataError, match="unknown stage"):
        plan(make_cfg("run", tmp_path, ["stages=[train,tune]"]))


def test_a_prior_sampler_trains_on_the_zero_shot_stage_s_own_file(tmp_path):
    # sampler=prior without sampler.scores: the zero-shot stage must run before training, and its
    # file is what the sampler reads
    with pytest.raises(DataError, match="stages=\\[zeroshot,train,evaluate,fit,query\\]"):
        plan(make_cfg("run", tmp_path, ["sampler=prior"]))
    assert not any(tmp_path.iterdir())
    cfg = make_cfg(
        "run",
        tmp_path,
        [*FAST_FIT, "sampler=prior", "stages=[zeroshot,train,evaluate,fit,query]"],
    )
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        results = run(cfg)
    trained = json.loads((tmp_path / "train_run.json").read_text())
    assert trained["config"]["sampler"]["scores"] == results["zeroshot"]["out"]
    assert trained["config"]["sampler"]["_target_"] == "supernet.sampler.PriorSampler"
    assert list(results["stage_s"]) == ["zeroshot", "train", "evaluate", "fit", "query"]


def test_the_cpu_preset_trains_by_its_own_zero_shot_file_and_nothing_else_does(tmp_path):
    # experiment=nb201_cifar10_cpu: zero-shot first, then run.py's training stage (only it) with
    # sampler=prior reading that stage's file; nas-train and retrain.py keep their samplers
    cfg = make_cfg("run", tmp_path, ["experiment=nb201_cifar10_cpu"], tiny=False)
    assert list(cfg.stages) == ["zeroshot", "train", "evaluate", "fit", "query"]
    assert reads_scores(cfg) and list(cfg.zeroshot.proxies) == ["wrcor", "meco"]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        train = stage_config(cfg, "train", {"sampler.scores": "/runs/zeroshot.csv"})
        fit = stage_config(cfg, "fit", {"features": "/runs/zeroshot.csv"})
        scored = stage_config(cfg, "zeroshot", {})
    assert fit.vote_with == "auto"  # with WRCor and MeCo both scored: the two, no live params
    assert (scored.space.N, scored.zeroshot.cells, scored.zeroshot.repeats) == (1, 5, 1)
    assert train.sampler._target_ == "supernet.sampler.PriorSampler"
    assert (train.sampler.scores, train.sampler.column) == ("/runs/zeroshot.csv", "meco")
    assert train.sampler.seed == cfg.seed
    plain = make_cfg("train", tmp_path, ["experiment=nb201_cifar10_cpu"], tiny=False)
    assert plain.sampler._target_ == "supernet.sampler.UniformSampler"
    again = make_cfg("retrain", tmp_path, ["experiment=nb201_cifar10_cpu", "arch=x"], tiny=False)
    assert again.sampler._target_ == "supernet.sampler.FixedSampler"
    assert not reads_scores(make_cfg("run", tmp_path, tiny=False))
    assert not reads_scores(make_cfg("run", tmp_path, ["sampler=prior", "sampler.scores=a.csv"]))

"""Lightning-hydra-template conventions (extras, optional loggers, an Optuna sweep) and library
functions in place of hand-written twins (scipy's rankdata, scikit-learn's Ridge)."""

from __future__ import annotations

import importlib.util
import math
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml
from omegaconf import OmegaConf
from scipy.stats import rankdata

from predictor.aggregate import SUMMARY_MD, write_summary
from predictor.module import RidgePredictor, predictor_from_state
from supernet.cli import apply_extras, finish_wandb_run, optimized_value, sweeper_value
from supernet.noise import LIGHTNING_LOG
from supernet.proxies import average_ranks
from supernet.space import NB201Space
from supernet.stages.train import check_logger_packages
from supernet.utils import DataError
from tests.conftest import CONF, ROOT, make_cfg

SEARCHES = sorted(p.stem for p in (CONF / "hparams_search").glob("*.yaml"))
STAGE_OF_SEARCH = {"supernet_optuna": "train", "predictor_optuna": "fit"}


def test_extras_print_the_config_tree_even_with_a_required_value_unset(tmp_path, capsys):
    cfg = make_cfg("fit", tmp_path, ["extras.print_config=true"])  # samples: ??? stays unset
    apply_extras(cfg)
    out = capsys.readouterr().out
    assert "predictor" in out and "samples: ???" in out and str(tmp_path) in out


def test_extras_default_drops_known_noise_and_prints_nothing(tmp_path, capsys):
    import logging

    log = logging.getLogger(LIGHTNING_LOG)
    before = list(log.filters)
    try:
        log.filters.clear()
        cfg = make_cfg("train", tmp_path, ["extras.ignore_warnings=false"])
        apply_extras(cfg)
        assert not log.filters
        apply_extras(make_cfg("train", tmp_path))
        assert log.filters  # silence_known_noise's filter
        assert capsys.readouterr().out == ""
    finally:
        log.filters[:] = before


def test_optimized_value_for_a_sweeper():
    result = {"metrics": {"val/acc": 12.5, "fit/heldout_tau": float("nan")}, "evaluated": 3}
    assert optimized_value(None, result) is None
    assert optimized_value("val/acc", result) == 12.5
    assert optimized_value("evaluated", result) == 3.0
    assert math.isnan(optimized_value("fit/heldout_tau", result))
    with pytest.raises(DataError, match=r"optimized_metric=val/loss .*val/acc"):
        optimized_value("val/loss", result)


def test_a_nan_objective_is_returned_as_none_a_failed_trial(caplog):
    """hydra-optuna-sweeper 1.3.0 stops the whole sweep on a NaN (it tells Optuna the failed
    trial's value); None is a failed trial and the sweep goes on (test_ecosystem_installed.py)."""
    assert sweeper_value("val/acc", 12.5) == 12.5 and sweeper_value(None, None) is None
    with caplog.at_level("WARNING", logger="supernet.cli"):
        assert sweeper_value("fit/heldout_tau", math.nan) is None
    assert "fit/heldout_tau is NaN" in caplog.text


def test_finish_wandb_run_ends_a_run_in_progress_only(monkeypatch):
    """Each job of a multirun ends its W&B run: Lightning's WandbLogger would join it otherwise."""
    import types

    ended = []
    fake = types.SimpleNamespace(run=None, finish=lambda exit_code: ended.append(exit_code))
    monkeypatch.setitem(sys.modules, "wandb", fake)
    finish_wandb_run(exit_code=0)
    assert ended == []  # no run: nothing to end
    fake.run = object()
    finish_wandb_run(exit_code=1)
    assert ended == [1]
    monkeypatch.delitem(sys.modules, "wandb")
    finish_wandb_run(exit_code=0)  # never imported: nothing imports it


def test_multirun_summary_lists_the_objective_per_job_and_the_best(tmp_path):
    for num, acc in [(0, "12.5"), (1, "30.0"), (2, "")]:  # job 2 logged no val/acc
        job = tmp_path / str(num)
        (job / ".hydra").mkdir(parents=True)
        (job / ".hydra" / "overrides.yaml").write_text(f"- lr={num}\n")
        (job / "csv").mkdir()
        (job / "csv" / "metrics.csv").write_text(f"epoch,step,val/acc,train/loss\n0,9,{acc},2.0\n")
    summary = write_summary(tmp_path, "val/acc", "maximize")
    assert summary["objective"] == {
        "metric": "val/acc",
        "direction": "maximize",
        "values": {"0": 12.5, "1": 30.0, "2": None},
        "best": "1",
    }
    md = (tmp_path / SUMMARY_MD).read_text()
    assert "## objective: val/acc (maximize)" in md
    assert "| `1` (best) | 30 |" in md and "| `2` | none (failed) |" in md
    assert write_summary(tmp_path, "val/acc", "minimize")["objective"]["best"] == "0"
    assert write_summary(tmp_path, "val/acc")["objective"]["best"] is None  # no direction
    assert "objective" not in write_summary(tmp_path)  # a plain multirun: none


@pytest.mark.parametrize("logger", ["wandb", "mlflow"])
def test_optional_logger_without_its_package_names_the_pip_command(logger, tmp_path):
    if importlib.util.find_spec(logger) is not None:
        pytest.skip(f"{logger} is installed: the logger works")
    cfg = make_cfg("train", tmp_path, [f"logger={logger}"])
    with pytest.raises(DataError, match=rf"needs the {logger} package.*pip install {logger}"):
        check_logger_packages(cfg.logger)
    check_logger_packages(make_cfg("train", tmp_path).logger)  # csv + tensorboard: fine


@pytest.mark.slow
def test_train_with_a_missing_logger_package_exits_2_before_training(tmp_path):
    if importlib.util.find_spec("wandb") is not None:
        pytest.skip("wandb is installed: the logger works")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "train.py"), "debug=tiny", "logger=wandb"]
        + [f"hydra.run.dir={tmp_path}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert "pip install wandb" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "checkpoints").exists() and not (tmp_path / "train_run.json").exists()


@pytest.mark.parametrize("search", SEARCHES)
def test_hparams_search_params_name_real_keys(search, tmp_path):
    """Without the plugin: each searched key exists in the stage's composed config, and the
    search maximises a named metric."""
    assert set(SEARCHES) == set(STAGE_OF_SEARCH)
    spec = yaml.safe_load((CONF / "hparams_search" / f"{search}.yaml").read_text())
    cfg = make_cfg(STAGE_OF_SEARCH[search], tmp_path)
    for key in spec["hydra"]["sweeper"]["params"]:
        assert OmegaConf.select(cfg, key) is not None, key
    assert spec["optimized_metric"] and spec["hydra"]["sweeper"]["direction"] == "maximize"


@pytest.mark.parametrize("search", SEARCHES)
def test_hparams_search_composes_with_the_optuna_plugin(search, tmp_path):
    pytest.importorskip(
        "hydra_plugins.hydra_optuna_sweeper",
        reason="hydra-optuna-sweeper is absent (pip install 'oneshot-nas[optuna]')",
    )
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(
            STAGE_OF_SEARCH[search], [f"hparams_search={search}"], return_hydra_config=True
        )
    assert cfg.hydra.sweeper._target_.endswith("OptunaSweeper") and cfg.optimized_metric


def test_average_ranks_is_scipy_rankdata():
    values = torch.randint(0, 20, (500,), generator=torch.Generator().manual_seed(0)).double()
    ranks = average_ranks(values)
    assert ranks.dtype == torch.float64 and ranks.device == values.device
    np.testing.assert_array_equal(ranks.numpy(), rankdata(values.numpy()))
    with pytest.raises(ValueError, match="1-D"):
        average_ranks(values.reshape(20, 25))
    with pytest.raises(ValueError, match="NaN"):
        average_ranks(torch.tensor([1.0, float("nan")]))


def closed_form_ridge(r: RidgePredictor, ops, y, u=None) -> torch.Tensor:
    """The hand-written solve RidgePredictor used before scikit-learn: normal equations with an
    unpenalised intercept."""
    X = r._design(ops, u)
    reg = r.hparams["alpha"] * torch.eye(X.size(1), dtype=torch.double)
    reg[0, 0] = 0.0
    yd = y.double()
    target = (yd - yd.mean()) / yd.std()
    return torch.linalg.solve(X.T @ X + reg, X.T @ target)


@pytest.mark.parametrize(
    "alpha,prune,with_u", [(1.0, False, False), (0.1, True, True), (10.0, True, False)]
)
def test_ridge_by_scikit_learn_equals_the_closed_form(alpha, prune, with_u):
    g = torch.Generator().manual_seed(1)
    space = NB201Space()
    ops = torch.randint(0, 5, (300, 6), generator=g)
    y = 80 + 2.0 * (ops == 3).sum(1).float() - 5.0 * (ops == 0).sum(1).float()
    y = y + torch.randn(300, generator=g)
    u = torch.randn(300, 2, generator=g) if with_u else None
    r = RidgePredictor(space, alpha=alpha, prune=prune)
    r.fit(ops, y, u)
    w = closed_form_ridge(r, ops, y, u)
    assert r.w.dtype == torch.float64 and r.w.shape == w.shape  # the checkpoint's format
    assert torch.allclose(r.w, w, atol=1e-8)
    new_ops = torch.randint(0, 5, (1000, 6), generator=g)
    new_u = torch.randn(1000, 2, generator=g) if with_u else None
    old = (r._design(new_ops, new_u) @ w).float() * r.y_std + r.y_mean
    assert (r.predict(new_ops, new_u) - old).abs().max() <= 1e-6
    state = r.state_dict()
    assert set(state) == {"kind", "hparams", "y_mean", "y_std", "u_channels", "w"}
    assert torch.equal(
        predictor_from_state(space, state).predict(new_ops, new_u), r.predict(new_ops, new_u)
    )

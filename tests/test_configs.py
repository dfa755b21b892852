"""Every option of every config group composes and instantiates."""

from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate

from tests.conftest import CONF, make_cfg

STAGES = ["train", "evaluate", "fit", "query", "retrain", "run"]


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


@pytest.mark.parametrize("stage", [s for s in STAGES if (CONF / f"{s}.yaml").is_file()])
def test_stage_configs_compose(stage, tmp_path):
    cfg = make_cfg(
        stage,
        tmp_path,
        ["arch='|none~0|+|none~0|none~1|+|none~0|none~1|none~2|'"] if stage == "retrain" else [],
    )
    assert cfg.paths.output_dir == str(tmp_path)


@pytest.mark.parametrize("sampler", options("sampler"))
def test_samplers_and_supernet_instantiate(sampler, tmp_path):
    over = [f"sampler={sampler}"]
    name = "retrain" if sampler == "fixed" else "train"
    if name == "retrain":
        over.append("arch='|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|nor_conv_1x1~2|'")
    cfg = make_cfg(name, tmp_path, over)
    module = instantiate(cfg.supernet)
    x = torch.zeros(2, *cfg.data.input_shape)
    assert module(x, module.sampler.sample()).shape == (2, cfg.data.num_classes)


@pytest.mark.parametrize("data", options("data"))
def test_data_configs(data, tmp_path):
    cfg = make_cfg("train", tmp_path, [f"data={data}", f"data.root={tmp_path}"])
    dm = instantiate(cfg.data)
    if data == "digits":
        dm.setup()
        assert tuple(dm.input_shape) == tuple(cfg.data.input_shape)
    else:
        with pytest.raises(FileNotFoundError, match=str(tmp_path)):
            dm.setup()


@pytest.mark.parametrize("trainer", options("trainer"))
def test_trainer_configs(trainer, tmp_path):
    if trainer == "gpu" and not torch.cuda.is_available():
        pytest.skip("trainer=gpu needs CUDA")
    cfg = make_cfg("train", tmp_path, [f"trainer={trainer}"])
    callbacks = [instantiate(c) for c in cfg.callbacks.values()]
    loggers = [instantiate(c) for c in cfg.logger.values()]
    trainer_obj = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers)
    assert trainer_obj.max_epochs == cfg.trainer.max_epochs
    assert type(trainer_obj.strategy.checkpoint_io).__name__ == "AtomicCheckpointIO"


@pytest.mark.parametrize("logger", options("logger"))
def test_logger_configs(logger, tmp_path):
    cfg = make_cfg("train", tmp_path, [f"logger={logger}"])
    for c in cfg.logger.values():
        assert Path(instantiate(c).save_dir) == tmp_path


def test_slurm_launcher_config_composes():
    from hydra import compose, initialize_config_dir

    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="submitit launcher absent")
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=["hydra/launcher=slurm", "hydra.launcher.nodes=2"],
            return_hydra_config=True,
        )
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert launcher.nodes == 2 and launcher.gpus_per_node == 1 and launcher.max_num_timeout == 3

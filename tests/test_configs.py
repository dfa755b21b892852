"""Every option of every config group composes and instantiates."""

from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate

from tests.conftest import CONF, make_cfg

ENTRY_POINTS = sorted(p.stem for p in CONF.glob("*.yaml"))
NEEDS = {  # the keys an entry point cannot compose without
    "retrain": ["arch='|none~0|+|none~0|none~1|+|none~0|none~1|none~2|'"],
    "export": ["arch='|none~0|+|none~0|none~1|+|none~0|none~1|none~2|'"],
}


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_every_entry_point_composes_with_every_preset(entry, tmp_path):
    """Each command's config composes alone, with `debug=tiny` and with each experiment."""
    text = (CONF / f"{entry}.yaml").read_text()
    over = NEEDS.get(entry, [])
    cfg = make_cfg(entry, tmp_path, over, tiny="debug: null" in text)
    assert cfg.paths.output_dir == str(tmp_path)
    if "experiment: null" in text:
        for experiment in options("experiment"):
            make_cfg(entry, tmp_path, [*over, f"experiment={experiment}"], tiny=False)


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


@pytest.mark.parametrize("entry", ["evaluate", "run", "benchmark_nb201"])
def test_presets_mean_the_same_under_every_entry_point(entry, tmp_path):
    """How subnets are measured has one home (the evaluator group); a preset sets it there, so
    `debug=tiny` or the GPU experiment reach `nas-evaluate` run alone as they reach `nas-run`."""
    over = ["ckpt_path=x"] if entry == "evaluate" else []
    tiny = make_cfg(entry, tmp_path, over)
    assert tiny.evaluator.num_archs == 12
    gpu = make_cfg(entry, tmp_path, [*over, "experiment=nb201_cifar10_gpu"], tiny=False)
    assert gpu.evaluator.bf16 is True and gpu.evaluator.num_archs == 1000
    digits = make_cfg(entry, tmp_path, [*over, "data=digits"], tiny=False)
    assert (digits.evaluator.num_archs, digits.evaluator.heldout_images) == (100, 400)
    cifar = make_cfg(entry, tmp_path, [*over, "data=cifar10"], tiny=False)
    assert (cifar.evaluator.num_archs, cifar.evaluator.heldout_images) == (200, 0)

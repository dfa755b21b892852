"""Every option of every config group composes and instantiates."""

from pathlib import Path

import pytest
import torch
from hydra import initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf

from predictor.stages import search
from predictor.stages.pipeline import stage_config
from supernet.proxies import PROXIES, get_proxy
from supernet.stages import zeroshot
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
    if sampler == "prior":  # it follows a zero-shot file
        scores = tmp_path / "zs.csv"
        scores.write_text(
            "arch,meco\n|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|nor_conv_1x1~2|,1.5\n"
        )
        over.append(f"sampler.scores={scores}")
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


@pytest.mark.parametrize("data", options("data"))
def test_retrain_trains_on_all_but_a_tenth_of_every_dataset(data, tmp_path):
    """retrain holds out a tenth (for val/acc) whichever data= is chosen, the supernet half; an
    explicit data.heldout_fraction still wins."""
    arch = NEEDS["retrain"]
    assert make_cfg("retrain", tmp_path, [*arch, f"data={data}"]).data.heldout_fraction == 0.1
    assert make_cfg("train", tmp_path, [f"data={data}"]).data.heldout_fraction == 0.5
    over = [*arch, f"data={data}", "data.heldout_fraction=0.3"]
    assert make_cfg("retrain", tmp_path, over).data.heldout_fraction == 0.3


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
    if logger in ("wandb", "mlflow"):  # optional packages (pip install 'oneshot-nas[wandb]')
        pytest.importorskip(logger, reason=f"logger={logger} needs {logger}, not installed")
    cfg = make_cfg("train", tmp_path, [f"logger={logger}"])
    for c in cfg.logger.values():
        # mlflow's store is sqlite:///<output_dir>/mlflow.db, for which Lightning gives no save_dir
        where = instantiate(c).save_dir or str(c.get("tracking_uri", "")).removeprefix(
            "sqlite:///"
        )
        assert Path(where).is_relative_to(tmp_path)


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


def test_the_cpu_experiment_runs_the_supernet_labs_protocol(tmp_path):
    """`experiment=nb201_cifar10_cpu` is the lab's protocol (conf/lab/cpu.yaml) as one pipeline: what
    the lab measured is what the preset's users get, so the two must not drift apart."""
    lab = make_cfg("benchmark_supernet", tmp_path, tiny=False)
    run = make_cfg("run", tmp_path, ["experiment=nb201_cifar10_cpu"], tiny=False)
    keys = ["space.C", "space.N", "trainer.max_epochs", "trainer.precision", "trainer.accelerator"]
    keys += ["evaluator.num_archs", "evaluator.heldout_images", "evaluator.calib_batches"]
    keys += ["evaluator.bn", "evaluator.bf16", "data.name", "data.heldout_fraction", "supernet"]
    keys += ["data.resolution", "data.pad"]
    for key in keys:
        assert OmegaConf.select(run, key) == OmegaConf.select(lab, key), key
    assert run.evaluator.archs == "unique"  # the lab's arch set: one per class, classes uniform
    assert run.zeroshot.cells == 5 and list(run.zeroshot.proxies) == ["wrcor", "meco"]
    assert run.num_threads is None  # torch's default, one per core: not make run's one thread
    assert (run.data.resolution, run.trainer.max_epochs) == (16, 90)  # the measured recipe


@pytest.mark.parametrize("proxy", options("proxies"))
def test_every_proxy_option_builds_its_proxy(proxy, tmp_path):
    """One file per proxy in conf/proxies/, selected as a list (`proxies=[wrcor,naswot]`): each
    resolves to its function in the registry, in the order listed; `vote` ranks the others."""
    listed = ["params", "flops", "vote"] if proxy == "vote" else [proxy]
    cfg = make_cfg("zeroshot", tmp_path, [f"proxies=[{','.join(listed)}]"])
    names, vote_of = zeroshot.plan(cfg)
    if proxy == "vote":
        assert (names, vote_of) == (["params", "flops"], ["params", "flops"])
    else:
        assert (names, vote_of) == ([proxy], []) and get_proxy(proxy) is PROXIES[proxy]
    assert set(options("proxies")) == {*PROXIES, "vote"}  # every registered proxy has its file


def test_proxies_default_and_order(tmp_path):
    cfg = make_cfg("zeroshot", tmp_path, tiny=False)
    assert zeroshot.plan(cfg) == (["wrcor", "meco", "naswot", "synflow", "params", "flops"], [])
    assert (cfg.zeroshot.limit, cfg.zeroshot.batch_size, cfg.zeroshot.chunk) == (0, 64, 16)
    cfg = make_cfg("zeroshot", tmp_path, ["proxies=[naswot,vote,wrcor]"])
    assert zeroshot.plan(cfg) == (["naswot", "wrcor"], ["naswot", "wrcor"])
    # a recipe drops a proxy by nulling it (a defaults list only adds to the group)
    cfg = make_cfg("zeroshot", tmp_path, ["proxies=[wrcor,meco]", "zeroshot.proxies.wrcor=null"])
    assert zeroshot.plan(cfg) == (["meco"], [])
    with pytest.raises(ValueError, match="at least one proxy"):
        zeroshot.plan(
            make_cfg("zeroshot", tmp_path, ["proxies=[wrcor]", "zeroshot.proxies.wrcor=null"])
        )


@pytest.mark.parametrize("option", options("search"))
def test_every_search_option_builds_its_search(option, tmp_path):
    """The search group's settings reach the EvolutionSearch that nas-search builds."""
    cfg = make_cfg("search", tmp_path, ["checkpoint=x", f"search={option}"], tiny=False)
    space = instantiate(cfg.space)
    built = search.build_search(cfg, space, lambda archs: [float(sum(a)) for a in archs])
    evo = cfg.search
    assert (built.population_size, built.parents) == (evo.population, evo.parents)
    assert (built.mutate_prob, built.crossover_fraction) == (
        evo.mutate_prob,
        evo.crossover_fraction,
    )
    assert len(built.run(1)) >= evo.population


def zero_shot_stage(entry: str, tmp_path: Path, over: list[str], tiny: bool = True):
    """The config nas-zeroshot runs with, alone or as nas-bench-nb201's zero-shot stage."""
    cfg = make_cfg(entry, tmp_path, over, tiny=tiny)
    if entry == "zeroshot":
        return cfg
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return stage_config(cfg, "zeroshot", {})


@pytest.mark.parametrize("entry", ["zeroshot", "benchmark_nb201"])
def test_zero_shot_presets_mean_the_same_under_every_entry_point(entry, tmp_path):
    """debug=tiny scores 40 archs under nas-zeroshot run alone as under the NB201 benchmark (it
    once reached only the benchmark's stage section: nas-zeroshot scored all 15,625)."""
    tiny = zero_shot_stage(entry, tmp_path, [])
    assert zeroshot.check_settings(tiny) == (40, 1)  # (limit, repeats)
    assert len(zeroshot.listed_archs(tiny, instantiate(tiny.space), 40)) == 40
    full = zero_shot_stage(entry, tmp_path, [], tiny=False)
    assert (full.zeroshot.limit, full.zeroshot.batch_size, full.archs) == (0, 64, "all")
    picked = zero_shot_stage(entry, tmp_path, ["proxies=[naswot,wrcor]", "zeroshot.limit=7"])
    assert zeroshot.plan(picked) == (["naswot", "wrcor"], [])
    assert picked.zeroshot.limit == 7
    if entry == "benchmark_nb201":  # its report ranks by wrcor
        assert zeroshot.plan(full) == (["wrcor"], [])


def search_stage(entry: str, tmp_path: Path, over: list[str], tiny: bool = True):
    """The config nas-search runs with, alone or as nas-run's search stage."""
    if entry == "search":
        return make_cfg(entry, tmp_path, ["checkpoint=x", *over], tiny=tiny)
    cfg = make_cfg(entry, tmp_path, over, tiny=tiny)
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return stage_config(cfg, "search", {})


@pytest.mark.parametrize("entry", ["search", "run"])
def test_search_presets_mean_the_same_under_every_entry_point(entry, tmp_path):
    """The search's sizes have one home (the search group): debug=tiny's reach nas-search run
    alone as they reach nas-run's search; top_k and budgets stay the stage's keys."""
    tiny = search_stage(entry, tmp_path, [])
    assert (tiny.search.population, tiny.search.parents, tiny.search.generations) == (16, 4, 3)
    full = search_stage(entry, tmp_path, [], tiny=False)
    assert (full.search.population, full.search.parents, full.search.generations) == (64, 16, 50)
    assert (full.search.mutate_prob, full.search.crossover_fraction, full.top_k) == (0.1, 0.5, 10)
    prefix = "search." if entry == "run" else ""
    over = ["search.population=8", f"{prefix}top_k=3", f"{prefix}max_flops_M=2"]
    picked = search_stage(entry, tmp_path, over)
    assert (picked.search.population, picked.top_k, picked.max_flops_M) == (8, 3, 2)
    assert "population" not in picked and "top_k" not in picked.search


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_every_entry_point_has_the_extras_block(entry, tmp_path):
    """`extras` (conf/extras/) reaches every command: print_config off, known warnings dropped."""
    tiny = "debug: null" in (CONF / f"{entry}.yaml").read_text()
    cfg = make_cfg(entry, tmp_path, NEEDS.get(entry, []), tiny=tiny)
    assert cfg.extras.print_config is False and cfg.extras.ignore_warnings is True

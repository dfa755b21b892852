"""Train one architecture standalone: `python scripts/retrain.py arch=STRING|FILE.json`.

The arch may be an arch string or the `best_arch.json` that `scripts/query.py` exports; a file's
recorded space is used (an explicit `space=` that differs is refused). The network holds only the
arch's ops (`supernet.network.build_network`); it is trained by the supernet's LightningModule, so
data, optimiser and logging are those of supernet training. `model.pt` / `model.json` of the trained
network are written beside `retrain.json` (as `scripts/export.py` writes them). With
`init_weights=model.pt` (of `scripts/export.py ckpt_path=...`) it fine-tunes the supernet's weights
instead of training from scratch.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import hydra
from hydra.errors import InstantiationException
from omegaconf import DictConfig, OmegaConf, open_dict

from supernet.artefact import read_arch_record, resolve_arch, space_node
from supernet.export import save_network
from supernet.stages import command_line
from supernet.stages.train import run as train
from supernet.utils import DataError, atomic_write_json, load_checkpoint_file


def arch_string(value: str) -> str:
    """An arch string, or the `arch` field of an exported JSON file.

    Raises:
        DataError: a missing or unreadable file, or one without a string `arch` field.
    """
    return read_arch_record(value)["arch"] if value.endswith(".json") else value


def set_arch(cfg: DictConfig, overrides: Sequence[str]) -> None:
    """Sets `cfg.arch` to the arch string and `cfg.space` to the space of a `best_arch.json`
    that records one.

    Raises:
        DataError: a bad file or arch, or a `space=` override that conflicts with the file's.
    """
    configured = hydra.utils.instantiate(cfg.space)
    arch, space, _ = resolve_arch(str(cfg.arch), configured, overrides)
    with open_dict(cfg):
        cfg.arch = arch
        if space is not configured:
            cfg.space = space_node(space)


def run(cfg: DictConfig, overrides: Sequence[str] | None = None) -> dict[str, Any]:
    """Trains the arch (from `init_weights`, a `model.pt`, when given), tests it on the test
    split and writes `retrain.json` (and, with `save_model`, `model.pt` + `model.json` of the
    trained network).

    Args:
        overrides: the command line, to tell an explicit `space=` (default: Hydra's).
    """
    set_arch(cfg, command_line() if overrides is None else overrides)
    with open_dict(cfg):  # the real task's images: data.resolution is the supernet's proxy task
        cfg.data.resolution = 0
    if cfg.get("init_weights"):  # built once up front: a bad file stops (exit 2) before training
        try:
            hydra.utils.instantiate(cfg.net)
        except InstantiationException as err:
            if isinstance(err.__cause__, DataError):
                raise err.__cause__ from None
            raise
    result = train(cfg, test=True)
    out = Path(cfg.paths.output_dir)
    summary = {
        "arch": cfg.arch,
        "test_acc": result["test"].get("test/acc"),
        "val_acc": result["metrics"].get("val/acc"),
        "epochs": cfg.trainer.max_epochs,
        "ckpt_path": result["ckpt_path"],
        "config": OmegaConf.to_container(cfg, resolve=True),
    }
    if cfg.get("save_model") and result["ckpt_path"]:
        net = hydra.utils.instantiate(cfg.net, weights=None)
        state = load_checkpoint_file(result["ckpt_path"])["state_dict"]
        net.load_state_dict({k[4:]: v for k, v in state.items() if k.startswith("net.")})
        summary["model"] = save_network(net, out)
    atomic_write_json(out / "retrain.json", summary)
    return {**result, "summary": summary, "out": str(out / "retrain.json")}


def report(cfg: DictConfig, result: dict[str, Any]) -> None:
    print(f"{cfg.arch}: test accuracy {result['summary']['test_acc']:.2f}% -> {result['out']}")

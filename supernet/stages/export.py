"""Export a searched arch as a plain network: `python scripts/export.py arch=best_arch.json`.

Writes `model.pt` (state dict) and `model.json` (`supernet.build_network`'s arguments), with
`ckpt_path=last.ckpt` the supernet's weights of that path (BN per `bn=`), with `torchscript=true` /
`onnx=true` a traced `model.ts` / `model.onnx`. Loading needs no config:

    net = build_network(**json.load(open("model.json")))
    net.load_state_dict(torch.load("model.pt", weights_only=True))
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from supernet.artefact import resolve_arch, space_overrides
from supernet.export import BN_MODES, checkpoint_space, export_arch
from supernet.stages import command_line
from supernet.utils import DataError, check_count, write_run_info


def run(cfg: DictConfig, overrides: Sequence[str] | None = None) -> dict[str, Any]:
    """Exports the arch into `out_dir`; returns `export_arch`'s result plus `arch`.

    Args:
        overrides: the command line, to tell an explicit `space=` (default: Hydra's).
    """
    if cfg.bn not in BN_MODES:
        raise DataError(f"bn={cfg.bn!r}: expected one of {list(BN_MODES)}")
    calib_batches = check_count("calib_batches", cfg.calib_batches, 1)
    overrides = command_line() if overrides is None else overrides
    if cfg.ckpt_path and not space_overrides(overrides):  # the space the supernet was trained on
        configured = checkpoint_space(cfg.ckpt_path)
    else:
        configured = hydra.utils.instantiate(cfg.space)
    arch, space, record = resolve_arch(str(cfg.arch), configured, overrides)

    def calib() -> Any:
        data = hydra.utils.instantiate(cfg.data, device="cpu")
        data.setup()
        return data.loader("train", train=True)

    result = export_arch(
        space,
        arch,
        cfg.out_dir,
        int(cfg.num_classes),
        list(cfg.input_shape),
        cfg.ckpt_path,
        str(cfg.bn),
        calib,
        calib_batches,
        bool(cfg.affine),
        bool(cfg.track_running_stats),
        bool(cfg.torchscript),
        bool(cfg.onnx),
    )
    write_run_info(
        cfg.out_dir,
        "export",
        OmegaConf.to_container(cfg, resolve=True),
        arch_record=record,
        **result,
    )
    return {**result, "arch": arch}


def report(cfg: DictConfig, out: dict[str, Any]) -> None:
    print(f"{out['arch']} -> " + ", ".join(out["files"].values()))

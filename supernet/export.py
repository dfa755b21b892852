"""From a searched arch to files any user can load: `model.pt` (a state dict), `model.json`
(`build_network`'s arguments), optionally TorchScript and ONNX; the weights fresh or inherited from
a trained supernet, with BatchNorm handled as the evaluator does (`bn=recalibrate|batch|inherit`).

    net = build_network(**json.load(open("model.json")))
    net.load_state_dict(torch.load("model.pt", weights_only=True))
"""

from __future__ import annotations

import importlib.util
import io
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from supernet.network import StandaloneNetwork, build_network, inherit_weights, network_spec
from supernet.space import SearchSpace, get_space
from supernet.utils import DataError, atomic_write, atomic_write_bytes, load_checkpoint_file

BN_MODES = ("recalibrate", "batch", "inherit")
log = logging.getLogger(__name__)


@torch.no_grad()
def recalibrate_bn(
    net: nn.Module,
    batches: Iterable[tuple[torch.Tensor, Any]],
    num_batches: int,
    forward: Callable[[torch.Tensor], Any] | None = None,
) -> int:
    """Re-estimates every BatchNorm's running statistics on `num_batches` batches: fresh buffers,
    a cumulative mean (momentum None), then eval mode (the evaluator's `bn=recalibrate`).

    Args:
        forward: how to run a batch (default `net(x)`; a supernet's path: `lambda x: sup(x, arch)`).

    Returns:
        how many batches were used.
    """
    bns = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if bns and not all(m.track_running_stats for m in bns):
        raise ValueError("recalibrating BatchNorm needs track_running_stats=True")
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    net.eval()
    for m in bns:
        m.train()
    used = 0
    for x, _ in batches:
        if used >= num_batches:
            break
        (forward or net)(x)
        used += 1
    for m, momentum in zip(bns, momenta):
        m.momentum = momentum
    net.eval()
    return used


def network_from_supernet(
    supernet: nn.Module,
    arch: str | Sequence[int],
    bn: str = "recalibrate",
    calib: Iterable[tuple[torch.Tensor, Any]] | None = None,
    calib_batches: int = 4,
) -> StandaloneNetwork:
    """The standalone network of `arch` with the supernet's weights of that path.

    Args:
        supernet: a trained `SuperNet` / `ChainSuperNet` (see `supernet.module.load_supernet`).
        bn: `recalibrate` (statistics re-estimated on `calib`, affine BN and running statistics
            from then on), `batch` (the supernet's BN: batch statistics at eval too) or `inherit`
            (the supernet's running statistics; it must keep them).
        calib: training batches `(x, y)` for `recalibrate`.
        calib_batches: how many of them.

    Raises:
        ValueError: a bad mode, arch, or a mode the supernet cannot serve.
    """
    if bn not in BN_MODES:
        raise ValueError(f"bn={bn!r}; expected one of {BN_MODES}")
    sbn = supernet.stem[1]
    if bn == "inherit" and not sbn.track_running_stats:
        raise ValueError(
            "bn=inherit needs a supernet trained with track_running_stats=true; this one keeps "
            "no running statistics: use bn=recalibrate or bn=batch"
        )
    if bn == "recalibrate" and calib is None:
        raise ValueError("bn=recalibrate needs calibration batches (calib)")
    batch = bn == "batch"
    net = build_network(
        supernet.space,
        arch,
        supernet.classifier.out_features,
        supernet.stem[0].in_channels,
        affine=sbn.affine if batch else True,
        track_running_stats=not batch,
    )
    inherit_weights(net, supernet)
    device = next(supernet.parameters()).device
    net.to(device).eval()
    if bn == "recalibrate":
        used = recalibrate_bn(net, calib, calib_batches)
        if used == 0:
            raise ValueError("bn=recalibrate: the calibration data gave no batch")
        if used < calib_batches:  # as the evaluator: a small training split has fewer
            log.warning("calib_batches=%d: the data gave only %d batches", calib_batches, used)
    return net


def network_from_checkpoint(
    ckpt_path: str | Path,
    arch: str | Sequence[int],
    space: SearchSpace | None = None,
    **kwargs: Any,
) -> tuple[StandaloneNetwork, dict[str, Any]]:
    """`network_from_supernet` on a supernet checkpoint of `scripts/train.py` (loaded with
    `weights_only=True`: nothing in the file runs); `space`, when given, must be the checkpoint's.

    Returns:
        the network and the checkpoint's `nas` record.

    Raises:
        DataError: a missing, corrupt or foreign checkpoint, another space, or a bad arch.
    """
    from supernet.module import load_supernet  # Lightning: only when a checkpoint is read

    supernet, record = load_supernet(ckpt_path)
    if space is not None:
        found = (supernet.space.name, supernet.space.config())
        if found != (space.name, space.config()):
            raise DataError(
                f"ckpt_path={ckpt_path}: a supernet of space {found[0]} {found[1]}; the arch is of "
                f"space {space.name} {space.config()}"
            )
    try:
        return network_from_supernet(supernet, arch, **kwargs), record
    except ValueError as err:
        raise DataError(f"ckpt_path={ckpt_path}: {err}") from None


def checkpoint_space(ckpt_path: str | Path) -> SearchSpace:
    """The space a supernet checkpoint was trained on (its meta; loaded with weights_only=True).

    Raises:
        DataError: a missing, corrupt or foreign file.
    """
    ckpt = load_checkpoint_file(ckpt_path, "supernet checkpoint")
    meta = (ckpt.get("nas") or {}).get("meta") if isinstance(ckpt.get("nas"), dict) else None
    try:
        return get_space(meta["space"], **meta["space_config"])
    except (KeyError, TypeError, ValueError) as err:
        raise DataError(
            f"ckpt_path={ckpt_path} is not a supernet checkpoint of this project (its space: "
            f"{type(err).__name__}: {err}); expected a last.ckpt from scripts/train.py"
        ) from None


def save_network(
    net: StandaloneNetwork,
    out_dir: str | Path,
    example: torch.Tensor | None = None,
    torchscript: bool = False,
    onnx: bool = False,
) -> dict[str, str]:
    """Writes `model.pt` (the state dict) and `model.json` (`build_network`'s arguments), and with
    `torchscript` / `onnx` a traced `model.ts` / `model.onnx` (both need `example`, an input batch).

    Returns:
        each written file's path by kind (`state_dict`, `spec`, `torchscript`, `onnx`).

    Raises:
        DataError: `onnx=True` without the `onnx` package installed.
    """
    out = Path(out_dir)
    if onnx and importlib.util.find_spec("onnx") is None:
        raise DataError("onnx=true needs the onnx package (pip install onnx); it is not installed")
    if (torchscript or onnx) and example is None:
        raise ValueError("torchscript / onnx export traces the network: pass an example batch")
    net = net.eval()
    state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
    paths = {"state_dict": out / "model.pt", "spec": out / "model.json"}
    atomic_write(paths["state_dict"], lambda tmp: torch.save(state, tmp))
    spec = json.dumps(network_spec(net), indent=2) + "\n"
    atomic_write_bytes(paths["spec"], spec.encode())
    if torchscript or onnx:
        cpu = build_network(**network_spec(net))
        cpu.load_state_dict(state)
        cpu.eval()
        x = example[:1].detach().cpu().float()
    if torchscript:
        with torch.no_grad():
            traced = torch.jit.trace(cpu, x)
        buf = io.BytesIO()
        torch.jit.save(traced, buf)
        paths["torchscript"] = atomic_write_bytes(out / "model.ts", buf.getvalue())
    if onnx:
        paths["onnx"] = out / "model.onnx"
        atomic_write(
            paths["onnx"],
            lambda tmp: torch.onnx.export(
                cpu, (x,), tmp, input_names=["x"], output_names=["logits"], dynamo=False
            ),
        )
    return {k: str(v) for k, v in paths.items()}


def load_network(spec_path: str | Path, weights_path: str | Path | None = None) -> nn.Module:
    """`build_network(**model.json)` with `model.pt`'s weights (default: beside the JSON)."""
    spec_path = Path(spec_path)
    try:
        spec = json.loads(spec_path.read_text())
        net = build_network(**spec)
    except (OSError, ValueError, TypeError) as err:
        raise DataError(f"{spec_path}: not a model.json of scripts/export.py ({err})") from None
    weights = Path(weights_path) if weights_path else spec_path.with_name("model.pt")
    state = load_checkpoint_file(weights, "weights")
    try:
        net.load_state_dict(state)
    except (RuntimeError, ValueError) as err:
        raise DataError(f"{weights}: not the weights of {spec_path} ({str(err)[:200]})") from None
    return net.eval()


def export_arch(
    space: SearchSpace,
    arch: str,
    out_dir: str | Path,
    num_classes: int,
    input_shape: Sequence[int],
    ckpt_path: str | Path | None = None,
    bn: str = "recalibrate",
    calib: Callable[[], Iterable[tuple[torch.Tensor, Any]]] | None = None,
    calib_batches: int = 4,
    affine: bool = True,
    track_running_stats: bool = True,
    torchscript: bool = False,
    onnx: bool = False,
) -> dict[str, Any]:
    """Builds the standalone network of `arch` (fresh, or with a supernet checkpoint's weights)
    and saves it (`save_network`).

    Args:
        num_classes, input_shape: of the data; a checkpoint must have been trained for them.
        ckpt_path: a supernet `last.ckpt`: the network inherits its weights of this path.
        bn, calib_batches: BatchNorm with inherited weights (`network_from_supernet`).
        calib: makes the training batches for `bn=recalibrate` (called only then).
        affine, track_running_stats: the BatchNorm of a fresh network.

    Returns:
        the written files (`files`), `build_network`'s arguments (`spec`) and, with a checkpoint,
        its `nas` record's `hash` and `epoch`.

    Raises:
        DataError: a bad checkpoint, or one made for another space, data shape or class count.
    """
    shape = tuple(int(v) for v in input_shape)
    source: dict[str, Any] = {}
    if ckpt_path:
        kw: dict[str, Any] = {"bn": bn, "calib_batches": calib_batches}
        if bn == "recalibrate" and calib is not None:
            kw["calib"] = calib()
        net, record = network_from_checkpoint(ckpt_path, arch, space, **kw)
        found = (net.classifier.out_features, net.stem[0].in_channels)
        if found != (int(num_classes), shape[0]):
            raise DataError(
                f"ckpt_path={ckpt_path}: trained for {found[0]} classes and {found[1]} input "
                f"channels; the data have {num_classes} and {shape[0]} (input_shape {list(shape)})"
            )
        source = {"ckpt_path": str(ckpt_path), "hash": record.get("hash"), "bn": bn}
        source["epoch"] = record.get("epoch")
    else:
        net = build_network(
            space, arch, int(num_classes), shape[0], None, affine, track_running_stats
        )
    example = torch.zeros(1, *shape)
    files = save_network(net.cpu(), out_dir, example, torchscript, onnx)
    return {"files": files, "spec": network_spec(net), "source": source}


def initial_network(weights: str | Path | None = None, **spec: Any) -> StandaloneNetwork:
    """`build_network(**spec)`, starting from the state dict in `weights` when given (a `model.pt`
    of `scripts/export.py`, e.g. with the supernet's weights: fine-tuning instead of training from
    scratch). Loaded with `weights_only=True`.

    Raises:
        DataError: a missing or unreadable file, or weights of another network.
    """
    net = build_network(**spec)
    if weights:
        path = Path(weights)
        state = load_checkpoint_file(path, "init_weights (a model.pt of scripts/export.py)")
        try:
            net.load_state_dict(state)
        except (RuntimeError, ValueError) as err:
            raise DataError(
                f"init_weights={path}: not the weights of {net.space.to_str(net.arch)!r} "
                f"({spec.get('space', net.space.name)}, affine={spec.get('affine', True)}, "
                f"track_running_stats={spec.get('track_running_stats', True)}): "
                f"{str(err).splitlines()[0][:200]}"
            ) from None
    return net

"""LightningModule that trains the supernet one sampled path (or one fair group of paths) per step."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from pytorch_lightning.plugins.io import TorchCheckpointIO

from supernet.fewshot import FewShotSuperNet
from supernet.model import SuperNet, build_supernet, layout_options
from supernet.sampler import Sampler
from supernet.space import Arch, get_space
from supernet.utils import DataError, atomic_write, load_checkpoint_file

if TYPE_CHECKING:
    from supernet.distill import RankDistillation

log = logging.getLogger(__name__)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoints written to a temporary file and renamed: a crash mid-save leaves the
    previous `last.ckpt` whole."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None
    ) -> None:
        atomic_write(path, lambda tmp: torch.save(checkpoint, tmp))


def net_meta(net: SuperNet) -> dict[str, Any]:
    """Everything that fixes the supernet's parameter layout; stored in and checked against checkpoints."""
    bn = net.stem[1]
    meta = {
        "space": net.space.name,
        "space_config": net.space.config(),
        "num_classes": net.classifier.out_features,
        "in_channels": net.stem[0].in_channels,
        "affine": bn.affine,
        "track_running_stats": bn.track_running_stats,
    }
    # a layout beyond what the space fixes (chain, NB201 shared convs)
    if getattr(net, "weights", None) is not None:
        meta["weights"] = net.weights
    if isinstance(net, FewShotSuperNet):  # one part per op of this decision
        meta["split_edge"] = net.edge
    return meta


def meta_hash(meta: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(meta, sort_keys=True).encode()).hexdigest()[:16]


def weights_hash(net: torch.nn.Module) -> str:
    """A digest of the parameters and buffers: equal for equal weights, whatever file held them."""
    h = hashlib.sha256()
    for name, t in sorted(net.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:12]


def check_meta(found: dict[str, Any], expected: dict[str, Any], source: str) -> None:
    """Raises DataError (a ValueError) naming every field of `expected` (nested ones as `a.b`) in
    which a checkpoint's meta differs."""

    def diffs(f: dict[str, Any], e: dict[str, Any], prefix: str) -> list[str]:
        out = []
        for k, v in sorted(e.items()):
            if isinstance(v, dict) and isinstance(f.get(k), dict):
                out += diffs(f[k], v, f"{prefix}{k}.")
            elif f.get(k) != v:
                out.append(f"{prefix}{k}: checkpoint has {f.get(k)!r}, config has {v!r}")
        return out

    diff = diffs(found, expected, "")
    if diff:
        raise DataError(
            f"checkpoint {source} was made for another supernet config: " + "; ".join(diff)
        )


def load_supernet(
    ckpt_path: str | Path, expected: dict[str, Any] | None = None
) -> tuple[SuperNet, dict]:
    """Rebuilds the trained supernet from a Lightning checkpoint of `SupernetModule`.

    Returns:
        the network (eval mode, CPU) and the checkpoint's `nas` record (meta, hash, epoch, ...).

    Raises:
        DataError: a missing, corrupt or foreign file, one that would need pickle (code) to load,
            or a checkpoint of another supernet config than `expected`.
    """
    path = Path(ckpt_path)
    ckpt = load_checkpoint_file(path, "supernet checkpoint")
    nas = ckpt.get("nas")
    if not isinstance(nas, dict) or not isinstance(nas.get("meta"), dict):
        raise DataError(
            f"{path} is not a supernet checkpoint of this project (no 'nas' record); expected a "
            "last.ckpt from scripts/train.py"
        )
    meta = nas["meta"]
    if expected is not None:
        check_meta(meta, expected, str(path))
    try:  # the space from its registered name and plain arguments: nothing named by the file runs
        space = get_space(meta["space"], **meta["space_config"])
        net = build_supernet(
            space,
            meta["num_classes"],
            meta["in_channels"],
            split_edge=meta.get("split_edge"),
            affine=meta["affine"],
            track_running_stats=meta["track_running_stats"],
            **layout_options(meta.get("weights")),
        )
        state = {
            k[len("net.") :]: v for k, v in ckpt["state_dict"].items() if k.startswith("net.")
        }
        net.load_state_dict(state)
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise DataError(
            f"{path} is not a complete checkpoint of a supernet ({type(err).__name__}: "
            f"{str(err)[:200]})"
        ) from None
    record = dict(ckpt["nas"], epoch=ckpt.get("epoch"), global_step=ckpt.get("global_step"))
    return net.eval(), record


def check_resume(ckpt_path: str | Path) -> dict[str, Any]:
    """Loads a checkpoint to resume from (plain data only) before anything is built.

    Raises:
        DataError: a missing, corrupt or pickle-needing file, or not a supernet checkpoint.
    """
    ckpt = load_checkpoint_file(ckpt_path, "checkpoint to resume (ckpt_path)")
    if not isinstance(ckpt.get("nas"), dict) or "state_dict" not in ckpt:
        raise DataError(
            f"ckpt_path={ckpt_path} is not a supernet checkpoint of this project (no 'nas' "
            "record); expected a last.ckpt from scripts/train.py"
        )
    return ckpt


def check_schedule(checkpoint: dict[str, Any], max_epochs: int, source: str) -> None:
    """Refuses a resume whose learning-rate schedule does not end at `max_epochs`.

    Lightning restores the schedule from the checkpoint, so a cosine schedule keeps the `T_max` it
    was made with: raising `trainer.max_epochs` would train the extra epochs at the schedule's
    end, lr 0, and the weights would not move.

    Raises:
        DataError: saying which `max_epochs` resumes, and how to train longer.
    """
    for sched in checkpoint.get("lr_schedulers") or []:
        t_max = sched.get("T_max") if isinstance(sched, dict) else None
        if t_max is not None and t_max != max_epochs:
            raise DataError(
                f"checkpoint {source} was trained with a cosine schedule over T_max={t_max} "
                f"epochs and resuming restores it; trainer.max_epochs={max_epochs} would "
                + (
                    f"train epochs {t_max} to {max_epochs - 1} at the schedule's end (lr "
                    f"{sched.get('eta_min', 0)}) and change nothing"
                    if max_epochs > t_max
                    else "stop before the schedule ends"
                )
                + f". Resume with trainer.max_epochs={t_max}; to train longer, start a new "
                f"run (without ckpt_path) with trainer.max_epochs={max_epochs}"
            )


def plain(value: Any) -> Any:
    """`value` as JSON-like data (dicts, lists, numbers, strings); anything else as its string."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def describe_partial(fn: Any) -> Any:
    """An optimizer / scheduler partial as its name and keyword arguments (None stays None)."""
    if isinstance(fn, functools.partial):
        return {"name": getattr(fn.func, "__name__", str(fn.func)), **fn.keywords}
    return None if fn is None else getattr(fn, "__name__", str(fn))


class SupernetModule(pl.LightningModule):
    """Single-path one-shot training with a pluggable sampler.

    Manual optimisation, so that fair sampling can accumulate gradients over its paths within a step.
    A step whose loss is NaN or infinite is skipped and counted; past `max_bad_steps` training stops.

    Args:
        net: the supernet.
        sampler: draws each step's archs.
        optimizer: partial taking the parameters.
        scheduler: partial taking the optimizer (stepped after each epoch's last batch), or None.
        grad_clip: max global gradient norm (0: no clipping).
        reference_archs: arch strings whose held-out accuracy is logged as `val/acc/<i>`; None: the
            space's own (`SearchSpace.default_reference_archs`: NB201's four, else 4 seeded ones).
        max_bad_steps: non-finite steps tolerated before stopping with an error.
        channels_last: keep weights and batches in NHWC memory order (faster convs on GPUs, and on
            CPUs with `supernet.ops.BatchNorm2d`).
        arch_per_rank: under DDP, each rank trains its own arch in a step (False: all ranks share
            one). Either way every rank's sampler draws the same numbers, so resume stays exact.
        distill: a `supernet.distill.RankDistillation` (each step trains `distill.paths` paths,
            and their losses are asked to keep a zero-shot order), or None.
        split_at: with a few-shot `net` (`supernet.fewshot.FewShotSuperNet`), the fraction of
            `trainer.max_epochs` trained before it splits (0 to 1); ignored otherwise.
    """

    def __init__(
        self,
        net: SuperNet,
        sampler: Sampler,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        grad_clip: float = 5.0,
        reference_archs: Sequence[str] | None = None,
        max_bad_steps: int = 10,
        arch_per_rank: bool = False,
        channels_last: bool = False,
        distill: RankDistillation | None = None,
        split_at: float = 0.5,
    ) -> None:
        super().__init__()
        if not 0 <= float(split_at) < 1:
            raise ValueError(
                f"supernet.split_at={split_at}: expected a fraction from 0 to below 1"
            )
        self.split_at = float(split_at)
        self.distill = distill
        self.automatic_optimization = False
        self.net, self.sampler = net, sampler
        self.optimizer_fn, self.scheduler_fn = optimizer, scheduler
        self.grad_clip, self.max_bad_steps = grad_clip, max_bad_steps
        self.arch_per_rank, self.channels_last = arch_per_rank, channels_last
        if reference_archs is None:
            self.reference_archs = net.space.default_reference_archs()
        else:
            self.reference_archs = [net.space.parse(s) for s in reference_archs]
        self.meta = net_meta(net)
        self.bad_steps = 0
        # hparams.yaml of the loggers and the checkpoint's hyper_parameters: plain data only
        # (Hydra's ListConfig would need pickle, which checkpoints refuse on loading)
        self.save_hyperparameters(
            plain(
                {
                    "net": self.meta,
                    "sampler": type(sampler).__name__,
                    "optimizer": describe_partial(optimizer),
                    "scheduler": describe_partial(scheduler),
                    "grad_clip": grad_clip,
                    "reference_archs": [net.space.to_str(a) for a in self.reference_archs],
                    "max_bad_steps": max_bad_steps,
                    "arch_per_rank": arch_per_rank,
                    "channels_last": channels_last,
                    "distill": None if distill is None else distill.describe(),
                    "split_at": self.split_at if isinstance(net, FewShotSuperNet) else None,
                }
            )
        )

    def forward(self, x: torch.Tensor, arch: Arch) -> torch.Tensor:
        return self.net(x, arch)

    def configure_optimizers(self) -> Any:
        opt = self.optimizer_fn(params=self.net.parameters())
        if self.scheduler_fn is None:
            return opt
        return {"optimizer": opt, "lr_scheduler": {"scheduler": self.scheduler_fn(optimizer=opt)}}

    def on_fit_start(self) -> None:
        if self.channels_last:
            self.net.to(memory_format=torch.channels_last)

    def _inputs(
        self, batch: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = batch
        return (x.contiguous(memory_format=torch.channels_last) if self.channels_last else x), y

    def on_train_epoch_start(self) -> None:
        loader = self.trainer.train_dataloader
        if hasattr(loader, "set_epoch"):
            loader.set_epoch(self.current_epoch)
        self._maybe_split()

    def _maybe_split(self) -> None:
        """Splits a few-shot supernet at the first epoch at or past `split_at` of the training
        (once: the split is in the weights, so a resumed run does not split again)."""
        if not isinstance(self.net, FewShotSuperNet) or bool(self.net.split_done):
            return
        if self.current_epoch >= round(self.split_at * self.trainer.max_epochs):
            opt = self.optimizers()
            self.net.split(getattr(opt, "optimizer", opt))
            log.info(
                "few-shot split at epoch %d: %d sub-supernets on decision %d",
                self.current_epoch,
                len(self.net.parts),
                self.net.edge,
            )

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = self._inputs(batch)
        opt = self.optimizers()
        opt.zero_grad(set_to_none=True)
        archs = self._step_archs()
        if self.distill is not None:
            total = self._distilled_backward(x, y, archs)
        else:
            total = torch.zeros((), device=x.device)
            for arch in archs:
                loss = F.cross_entropy(self.net(x, arch), y)
                self.manual_backward(loss / len(archs))
                total = total + loss.detach()
            total = total / len(archs)
        if not math.isfinite(total.item()):
            self.bad_steps += 1
            self.log("train/bad_steps", float(self.bad_steps))
            if self.bad_steps > self.max_bad_steps:
                raise RuntimeError(
                    f"training loss was NaN or infinite in {self.bad_steps} steps (more than "
                    f"max_bad_steps={self.max_bad_steps}); last at epoch {self.current_epoch}, "
                    f"batch {batch_idx}, archs {[self.net.space.to_str(a) for a in archs]}"
                )
            opt.zero_grad(set_to_none=True)
            return
        if self.grad_clip:
            self.clip_gradients(
                opt, gradient_clip_val=self.grad_clip, gradient_clip_algorithm="norm"
            )
        opt.step()
        self.log("train/loss", total, prog_bar=True, on_step=True, on_epoch=True, sync_dist=True)

    def _distilled_backward(
        self, x: torch.Tensor, y: torch.Tensor, archs: list[Arch]
    ) -> torch.Tensor:
        """The paths' mean cross-entropy plus the weighted ranking loss, one backward; returns the
        mean cross-entropy (what `train/loss` logs)."""
        losses = torch.stack([F.cross_entropy(self.net(x, arch), y) for arch in archs])
        rank = self.distill.loss(archs, losses)
        self.manual_backward(losses.mean() + self.distill.weight * rank)
        self.log("train/rank_loss", rank.detach(), on_step=False, on_epoch=True, sync_dist=True)
        return losses.detach().mean()

    def _step_archs(self) -> list[Arch]:
        world = self.trainer.world_size if self._trainer is not None else 1
        if not self.arch_per_rank or world == 1:
            archs = self.sampler.sample_step()
        else:
            archs = [self.sampler.sample_step() for _ in range(world)][self.trainer.global_rank]
        if self.distill is not None:  # topped up from the sampler's own draws: resume stays exact
            archs = archs + [self.sampler.sample() for _ in range(self.distill.paths - len(archs))]
        return archs

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        # Step at the epoch's last batch, before validation saves the checkpoint, so that a resumed
        # run starts the next epoch with the same learning rate as a straight one.
        sched = self.lr_schedulers()
        if sched is not None and self.trainer.is_last_batch:
            sched.step()

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._log_accuracy(batch, "val")

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._log_accuracy(batch, "test")

    def _log_accuracy(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> None:
        x, y = self._inputs(batch)
        accs = []
        for i, arch in enumerate(self.reference_archs):
            acc = (self.net(x, arch).argmax(1) == y).float().mean() * 100
            self.log(f"{stage}/acc/{i}", acc, on_epoch=True, batch_size=len(y), sync_dist=True)
            accs.append(acc)
        if accs:
            self.log(
                f"{stage}/acc",
                torch.stack(accs).mean(),
                prog_bar=True,
                on_epoch=True,
                batch_size=len(y),
                sync_dist=True,
            )

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["nas"] = {
            "meta": self.meta,
            "hash": meta_hash(self.meta),
            "sampler": type(self.sampler).__name__,
            "sampler_state": self.sampler.state_dict(),
            "bad_steps": self.bad_steps,
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if "nas" not in checkpoint:
            raise ValueError(
                "checkpoint is not a supernet checkpoint of this project (no 'nas' record)"
            )
        nas = checkpoint["nas"]
        # `weights` always compared: a shared-conv checkpoint into a separate-weights config too
        expected = dict(
            self.meta, weights=self.meta.get("weights"), split_edge=self.meta.get("split_edge")
        )
        check_meta(nas["meta"], expected, "being resumed")
        if nas["sampler"] != type(self.sampler).__name__:
            raise ValueError(
                f"checkpoint was trained with sampler {nas['sampler']}, config has "
                f"{type(self.sampler).__name__}"
            )
        if self._trainer is not None:
            check_schedule(checkpoint, self.trainer.max_epochs, str(self.trainer.ckpt_path))
        self.sampler.load_state_dict(nas["sampler_state"])
        self.bad_steps = nas["bad_steps"]

"""Subnet evaluation with inherited weights: the cheap, noisy accuracy estimates the predictor fits.

The evaluator owns BatchNorm handling, one explicit option:
- `recalibrate`: reset the running statistics and re-estimate them on K training batches with the
  subnet's own path, then evaluate in eval mode;
- `batch`: normalise every held-out batch by its own statistics (the running buffers are untouched);
- `inherit`: use the running statistics stored in the supernet (needs `track_running_stats`).
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from supernet.model import SuperNet
from supernet.space import Arch, SearchSpace

BN_MODES = ("recalibrate", "batch", "inherit")


@dataclass
class SubnetResult:
    acc: float  # percent
    loss: float
    images: int


@contextlib.contextmanager
def _bn_state(net: nn.Module) -> Iterator[list[nn.BatchNorm2d]]:
    """Restores every BatchNorm's mode, momentum and buffers on exit, whatever the body did."""
    bns = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [
        (
            m.training,
            m.momentum,
            m.track_running_stats,
            m.running_mean,
            m.running_var,
            m.num_batches_tracked,
        )
        for m in bns
    ]
    try:
        yield bns
    finally:
        for m, (training, momentum, track, mean, var, count) in zip(bns, saved):
            m.training, m.momentum, m.track_running_stats = training, momentum, track
            m.running_mean, m.running_var, m.num_batches_tracked = mean, var, count


class SubnetEvaluator:
    """Measures held-out accuracy and loss of subnets of a trained supernet.

    Args:
        net: the trained supernet (its weights are never changed).
        heldout: batches `(x, y)` to measure on.
        bn: `recalibrate`, `batch` or `inherit` (see the module docstring).
        calib: training batches for `recalibrate`.
        calib_batches: how many of them to use.
        bf16: run the convolutions under bf16 autocast (a GPU, or a CPU with native bf16: see
            `supernet.utils.native_bf16`); BN statistics and the loss stay fp32.
    """

    def __init__(
        self,
        net: SuperNet,
        heldout: Iterable[tuple[torch.Tensor, torch.Tensor]],
        bn: str = "recalibrate",
        calib: Iterable[tuple[torch.Tensor, torch.Tensor]] | None = None,
        calib_batches: int = 4,
        bf16: bool = False,
    ) -> None:
        if bn not in BN_MODES:
            raise ValueError(f"evaluator bn={bn!r}; expected one of {BN_MODES}")
        if bn == "recalibrate" and calib is None:
            raise ValueError("bn=recalibrate needs calibration batches (calib)")
        if bn == "inherit" and not net.stem[1].track_running_stats:
            raise ValueError(
                "bn=inherit needs a supernet trained with track_running_stats=true; this one keeps "
                "no running statistics: use bn=recalibrate or bn=batch"
            )
        self.net, self.heldout, self.bn = net, heldout, bn
        self.calib, self.calib_batches = calib, calib_batches
        self.bf16 = bf16

    @torch.no_grad()
    def evaluate(self, arch: Arch) -> SubnetResult:
        device = next(self.net.parameters()).device
        autocast = torch.autocast(device.type, torch.bfloat16, enabled=self.bf16)
        with _bn_state(self.net) as bns, autocast:
            self.net.eval()
            if self.bn == "batch":
                for m in bns:  # batch statistics, running buffers neither read nor written
                    m.training, m.track_running_stats = True, False
            elif self.bn == "recalibrate":
                self._recalibrate(arch, bns)
            correct, loss_sum, n = torch.zeros(()), torch.zeros(()), 0
            for x, y in self.heldout:
                logits = self.net(x, arch).float()
                correct = correct + (logits.argmax(1) == y).sum().cpu()
                loss_sum = loss_sum + F.cross_entropy(logits, y, reduction="sum").cpu()
                n += len(y)
        if n == 0:
            raise ValueError("the held-out split is empty")
        return SubnetResult(acc=100.0 * float(correct) / n, loss=float(loss_sum) / n, images=n)

    def _recalibrate(self, arch: Arch, bns: list[nn.BatchNorm2d]) -> None:
        for m in bns:  # fresh buffers: the supernet's own (if any) are restored afterwards
            dev = m.weight.device if m.weight is not None else next(self.net.parameters()).device
            m.running_mean = torch.zeros(m.num_features, device=dev)
            m.running_var = torch.ones(m.num_features, device=dev)
            m.num_batches_tracked = torch.zeros((), dtype=torch.long, device=dev)
            m.track_running_stats, m.momentum, m.training = True, None, True  # cumulative mean
        for i, (x, _) in enumerate(self.calib):
            if i >= self.calib_batches:
                break
            self.net(x, arch)
        for m in bns:
            m.training = False


def choose_archs(space: SearchSpace, how: str, num_archs: int, seed: int) -> list[Arch]:
    """The archs to evaluate: `uniform` (distinct, uniformly drawn), `unique` (one per isomorphism
    class, classes drawn uniformly) or `all`; `num_archs <= 0` takes every arch of the kind. The list
    depends only on (how, num_archs, seed), so a rerun meets the same archs and skips those done."""
    rng = random.Random(seed)
    if how == "uniform" and not space.enumerable and num_archs > space.size:  # never ends
        raise ValueError(
            f"num_archs={num_archs}: the space has only {space.size} archs; ask for at most that "
            "many (or archs=all)"
        )
    if how == "uniform" and 0 < num_archs and not space.enumerable:
        drawn: dict[Arch, None] = {}  # a space too large to list: distinct uniform draws
        while len(drawn) < num_archs:
            drawn.setdefault(space.sample(rng))
        return list(drawn)
    archs = list(space.all_archs())
    if how == "unique":
        reps: dict[str, Arch] = {}
        for arch in archs:
            reps.setdefault(space.iso_key(arch), arch)
        archs = list(reps.values())
    elif how not in ("uniform", "all"):
        raise ValueError(
            f"archs={how!r}; expected uniform, unique, all or a CSV file with an arch column"
        )
    if how == "all" or num_archs <= 0:
        return archs
    return rng.sample(archs, min(num_archs, len(archs)))

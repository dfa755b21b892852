"""What the ReLU-based proxies share: a recorder of ReLU pre-activations, a ridge-guarded log det, and
the scoring network."""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Callable, Iterator
from typing import TypeVar

import torch
from torch import nn

from supernet.model import SuperNet, build_supernet
from supernet.space import NB201Space

# A ridge of 1e-6 x the mean diagonal: far below any eigenvalue of a non-degenerate K (whose diagonal
# entries are sums of 2 x 2^l and whose off-diagonal correlations stay well under 1), so it only ever
# decides the score of numerically singular K, and ranks those below every regular one.
RIDGE = 1e-6
# Scratch for stacking same-size responses (elements): 256 MiB of float32, enough for every stage-1
# response of a full NB201 net at B=64 in one batched matmul.
MAX_STACK = 1 << 26
# Raised when a ReLU proxy's forward recorded nothing. Every network of the space runs at least its
# head's ReLU (`SuperNet.head_relu`, even an all-`none` cell), so an empty record is never a property
# of an arch: the recorder is not attached to the network that ran.
NO_RESPONSE = (
    "no ReLU response was recorded: the recorder's hooks are not on this network (every network "
    "runs at least its head's ReLU)"
)

T = TypeVar("T")


def build_scoring_net(
    space: NB201Space, num_classes: int, in_channels: int, seed: int, device: torch.device | str
) -> SuperNet:
    """The supernet whose path for `arch` is "the freshly initialised network for `arch`".

    All parameters get PyTorch's default initialisation from `seed` once, on the CPU (so the weights do
    not depend on the device). Scoring never changes a weight (no optimizer step; BatchNorm runs in
    training mode on batch statistics, so its running statistics, which it still updates, never reach an
    output), hence this equals re-initialising from `seed` before every arch: a score depends only on
    (arch, seed, batch), never on which archs were scored before. BatchNorm has NB201's standalone
    settings (affine, running statistics); in training mode with fresh affine parameters (1, 0) neither
    changes a response.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = build_supernet(
            space, num_classes, in_channels, affine=True, track_running_stats=True
        )
    return net.to(device).train()


class ReLURecorder:
    """Records the input of every ReLU call of one network while `record()` is active.

    Each input is handed to its ReLU through an alias (`view_as`, no copy) that only this ReLU consumes,
    so `torch.autograd.grad(loss, aliases)` gives the gradient along this ReLU alone, even when one tensor
    feeds several ReLUs (a cell's node 0 feeds up to three convs). A ReLU called twice is two responses.
    Hooks are registered once, at construction; outside `record()` they cost one attribute check.

    Args:
        net: the network; its `block_index()` gives each ReLU's block position.
    """

    def __init__(self, net: SuperNet) -> None:
        self.level = net.block_index()
        self.records: list[tuple[int, torch.Tensor]] = []
        self._on = False
        self._handles = [m.register_forward_pre_hook(self._hook) for m in self.level]

    def _hook(
        self, module: nn.Module, args: tuple[torch.Tensor, ...]
    ) -> tuple[torch.Tensor] | None:
        if not self._on:
            return None
        alias = args[0].view_as(args[0])
        self.records.append((self.level[module], alias))
        return (alias,)

    @contextlib.contextmanager
    def record(self) -> Iterator[list[tuple[int, torch.Tensor]]]:
        """Yields the list that fills with `(block position, pre-activation alias)` per ReLU call.

        Raises:
            RuntimeError: the block ran and nothing was recorded (`NO_RESPONSE`).
        """
        self.records = []
        self._on = True
        try:
            yield self.records
            if not self.records:
                raise RuntimeError(NO_RESPONSE)
        finally:
            self._on = False

    def remove(self) -> None:
        for h in self._handles:
            h.remove()


@contextlib.contextmanager
def weights_frozen(net: nn.Module) -> Iterator[None]:
    """No parameter of `net` requires a gradient inside the block (restored after): a proxy that
    asks only for gradients of responses then skips every weight gradient, about a third of a
    convolution's backward on a CPU (8.6 -> 5.7 ms for a (64, 8, 32, 32) 3x3 conv, 1 thread)."""
    trainable = [p for p in net.parameters() if p.requires_grad]
    for p in trainable:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in trainable:
            p.requires_grad_(True)


def per_net(cache: dict, name: str, net: nn.Module, build: Callable[[], T]) -> T:
    """`build()` made once per live `net` and kept in `cache[name]`, a table weakly keyed by the net
    itself: an entry leaves with its net. Keyed by `id(net)` instead, a net built after another was
    freed could get the dead one's id (CPython reuses the memory) and its helper: a recorder whose
    hooks sit on the dead net's ReLUs recorded nothing (the IndexError seen once in the speed
    benchmark's per-arch nets), a SynFlow copy held the dead net's weights. `build()`'s result must
    not hold `net` itself, or the entry never leaves."""
    table = cache.setdefault(name, weakref.WeakKeyDictionary())
    if net not in table:
        table[net] = build()
    return table[net]


def recorder_for(net: SuperNet, cache: dict) -> ReLURecorder:
    """The one recorder of `net`, built on first use and kept in `cache` while `net` lives."""
    return per_net(cache, "relu_recorder", net, lambda: ReLURecorder(net))


def workspace_for(device: torch.device, cache: dict) -> torch.Tensor:
    """A float32 scratch of `MAX_STACK` elements on `device`, allocated once and kept in `cache`.

    Reused across archs: a fresh 256 MiB allocation per arch cost more than the matmuls on CPU.
    """
    key = ("workspace", str(device))
    if key not in cache:
        cache[key] = torch.empty(MAX_STACK, dtype=torch.float32, device=device)
    return cache[key]


def group_by_size(responses: list[torch.Tensor], batch: int) -> Iterator[list[int]]:
    """Indices of `responses` with equal per-sample size, in chunks of at most `MAX_STACK` elements."""
    groups: dict[int, list[int]] = {}
    for i, r in enumerate(responses):
        groups.setdefault(r[0].numel(), []).append(i)
    for D, idx in groups.items():
        step = max(1, MAX_STACK // (batch * D))
        for s in range(0, len(idx), step):
            yield idx[s : s + step]


def logdet_ridge(K: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """log det K of a symmetric `(B, B)` matrix, in float64, with a ridge where K is singular.

    Where det K <= 0 or is not finite (a dead network: every sample gives the same responses), returns
    log |det(K + r I)| with r = RIDGE x mean(diag K) instead. Both are computed so that the device never
    waits on a branch.

    Returns:
        (score, ridged): 0-dim float64 and bool tensors on K's device.
    """
    K = K.to(torch.float64)
    sign, logabs = torch.linalg.slogdet(K)
    r = RIDGE * K.diagonal().mean().clamp_min(1e-300)
    eye = torch.eye(K.shape[0], dtype=K.dtype, device=K.device)
    _, logabs_r = torch.linalg.slogdet(K + r * eye)
    ridged = (sign <= 0) | ~torch.isfinite(logabs)
    return torch.where(ridged, logabs_r, logabs), ridged


def fixed_batch(
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    mean: torch.Tensor,
    std: torch.Tensor,
    batch_size: int,
    seed: int,
    device: torch.device | str,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The one batch every arch is scored on: `batch_size` training images drawn with `seed`, normalised
    per channel, no augmentation.

    Shapes:
        x_train `(N, C, H, W)` uint8, y_train `(N,)`; mean, std `(C,)` in 0..255 units ->
        x `(batch_size, C, H, W)` float32, y `(batch_size,)` int64, both on `device`.
    """
    if not 0 < batch_size <= len(y_train):
        raise ValueError(
            f"batch_size={batch_size} must lie in [1, {len(y_train)}] training images"
        )
    idx = torch.randperm(len(y_train), generator=torch.Generator().manual_seed(seed))[:batch_size]
    x = x_train[idx.to(x_train.device)].float().cpu()
    x = (x - mean.float().cpu().view(1, -1, 1, 1)) / std.float().cpu().view(1, -1, 1, 1)
    return x.to(device), y_train[idx.to(y_train.device)].long().to(device)

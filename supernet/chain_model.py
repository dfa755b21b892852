"""The one-shot supernet over the chain space: one weight-entangled block per layer.

Every op of a layer is a slice of one block holding the layer's largest kernel and expansion (as in
Once-for-All): expansion e uses the first `c_in * e` hidden channels, kernel k the centre k x k of
the depthwise kernel. Separate weights per op do not train from single-path sampling: on digits the
20-layer chain with one block per op stays at chance loss for 300 steps while the entangled one
reaches 0.25 (BENCHMARKS.md), because each stage's first layer then maps features through one of 6
unrelated projections and no two sampled paths agree on what a channel means.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

from supernet.chain_space import ChainSpace, parse_op
from supernet.ops import BatchNorm2d, as_nchw
from supernet.space_base import Arch


class SlicedBatchNorm(BatchNorm2d):
    """BatchNorm over the first `x.shape[1]` of its channels (affine parameters and running
    statistics sliced alike), so that blocks of every expansion share one. NHWC on a CPU as
    `ops.BatchNorm2d`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        if c == self.num_features:
            return super().forward(x)
        return as_nchw(functools.partial(self._sliced, c), x)

    def _sliced(self, c: int, x: torch.Tensor) -> torch.Tensor:
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:
                momentum = 1.0 / float(self.num_batches_tracked)

        def part(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t[:c]

        # as nn.BatchNorm2d: running buffers read at eval, updated in training only when tracked
        stats = not self.training or self.track_running_stats
        return F.batch_norm(
            x,
            part(self.running_mean) if stats else None,
            part(self.running_var) if stats else None,
            part(self.weight),
            part(self.bias),
            self.training or self.running_mean is None,
            momentum,
            self.eps,
        )


class InvertedResidual(nn.Module):
    """Expand 1x1 -> depthwise kxk (stride) -> project 1x1, each conv followed by BN, ReLU after the
    first two (none after the projection: MobileNetV2's linear bottleneck). Identity shortcut when
    the shape is kept. ReLU rather than ReLU6: the zero-shot proxies hook `nn.ReLU`.

    Holds the weights of the largest kernel and expansion; `forward(x, k, e)` runs the slice for
    kernel `k` and expansion `e` (both default to the largest). Built with one kernel and one
    expansion, it is exactly that block (the standalone network's).

    Shapes:
        input `(B, c_in, H, W)`, output `(B, c_out, ceil(H / stride), ceil(W / stride))`.
    """

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel_size: int,
        expansion: int,
        stride: int,
        affine: bool,
        track: bool,
    ) -> None:
        super().__init__()
        self.c_in, self.kernel_size, self.expansion, self.stride = (
            c_in,
            kernel_size,
            expansion,
            stride,
        )
        hidden = c_in * expansion
        self.residual = stride == 1 and c_in == c_out
        self.expand = nn.Conv2d(c_in, hidden, 1, bias=False)
        self.bn1 = SlicedBatchNorm(hidden, affine=affine, track_running_stats=track)
        self.relu1 = nn.ReLU(inplace=False)
        self.depthwise = nn.Conv2d(
            hidden, hidden, kernel_size, stride, kernel_size // 2, groups=hidden, bias=False
        )
        self.bn2 = SlicedBatchNorm(hidden, affine=affine, track_running_stats=track)
        self.relu2 = nn.ReLU(inplace=False)
        self.project = nn.Conv2d(hidden, c_out, 1, bias=False)
        self.bn3 = BatchNorm2d(c_out, affine=affine, track_running_stats=track)

    def forward(
        self, x: torch.Tensor, kernel_size: int | None = None, expansion: int | None = None
    ) -> torch.Tensor:
        k = self.kernel_size if kernel_size is None else kernel_size
        e = self.expansion if expansion is None else expansion
        if k > self.kernel_size or e > self.expansion or k % 2 == 0:
            raise ValueError(
                f"chain block: kernel {k} / expansion {e} outside this block's "
                f"{self.kernel_size} / {self.expansion} (odd kernels only)"
            )
        hidden, o = self.c_in * e, (self.kernel_size - k) // 2
        h = self.relu1(self.bn1(F.conv2d(x, self.expand.weight[:hidden])))
        dw = self.depthwise.weight[:hidden, :, o : o + k, o : o + k]
        h = self.relu2(self.bn2(F.conv2d(h, dw, None, self.stride, k // 2, 1, hidden)))
        out = self.bn3(F.conv2d(h, self.project.weight[:, :hidden]))
        return x + out if self.residual else out


class ChainSuperNet(nn.Module):
    """Stem conv 3x3 -> one chosen block per layer -> head conv 1x1 -> pool -> linear.

    Every layer holds one weight-entangled `InvertedResidual` sized for the largest op; `skip`
    bypasses it. `forward(x, arch)` is stateless and runs exactly the sampled slice; the rest of
    the weights get zero gradient, the blocks of skipped layers none. With `arch` given, only that
    arch's blocks are built, each exactly its op's size (an `nn.Identity` stands for a skipped
    layer): the standalone network (for retraining, and to check `ChainSpace.cost`), whose
    `forward` accepts that arch only.

    Args:
        space: the chain space (its layout sets the widths and depth).
        num_classes: classifier outputs.
        in_channels: input image channels.
        affine: BatchNorm affine parameters.
        track_running_stats: BatchNorm running statistics (False: batch statistics at eval too).
        arch: build only this arch's blocks (None: every block, the supernet).
    """

    weights = "entangled"  # checkpoint meta: the parameter layout of the blocks

    def __init__(
        self,
        space: ChainSpace,
        num_classes: int,
        in_channels: int = 3,
        affine: bool = False,
        track_running_stats: bool = False,
        arch: Arch | None = None,
    ) -> None:
        super().__init__()
        self.space = space
        self.arch = None if arch is None else space.check(arch)
        track = track_running_stats
        c = space.channels(space.stem_channels)
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, c, 3, padding=1, bias=False),
            BatchNorm2d(c, affine=affine, track_running_stats=track),
            nn.ReLU(inplace=False),
        )
        ops = [parse_op(op) for op in space.ops if op != "skip"]
        largest = (max(k for k, _ in ops), max(e for _, e in ops))
        self.blocks = nn.ModuleList()
        for i, layer in enumerate(space.chain):
            if self.arch is not None and self.arch[i] == space.skip:
                self.blocks.append(nn.Identity())
                continue
            k, e = largest if self.arch is None else parse_op(space.ops[self.arch[i]])
            self.blocks.append(
                InvertedResidual(layer.c_in, layer.c_out, k, e, layer.stride, affine, track)
            )
        head = space.channels(space.head_channels)
        self.head = nn.Sequential(
            nn.Conv2d(space.chain[-1].c_out, head, 1, bias=False),
            BatchNorm2d(head, affine=affine, track_running_stats=track),
        )
        self.head_relu = nn.ReLU(inplace=False)
        self.classifier = nn.Linear(head, num_classes)

    def forward(self, x: torch.Tensor, arch: Arch) -> torch.Tensor:
        """Logits of the subnet `arch`.

        Shapes:
            x `(B, in_channels, H, W)` -> logits `(B, num_classes)`.
        """
        if self.arch is not None and tuple(arch) != self.arch:
            raise ValueError(
                f"chain: this standalone network is {self.space.to_str(self.arch)!r}; got arch "
                f"{tuple(arch)!r}"
            )
        h = self.stem(x)
        for i, a in enumerate(arch):
            h = self.layer(i, h, a)
        h = self.head_relu(self.head(h))
        return self.classifier(h.mean(dim=(2, 3)))

    def layer(self, i: int, h: torch.Tensor, op: int) -> torch.Tensor:
        """Layer `i` of the chain with op index `op` applied to `h`."""
        if op == self.space.skip:
            return h
        return self.blocks[i](h, *parse_op(self.space.ops[op]))

    def block_index(self) -> dict[nn.Module, int]:
        """Maps every ReLU to its layer (stem -1, layers from 0; the head's ReLU is
        `num_decisions`)."""
        index: dict[nn.Module, int] = {self.stem[2]: -1, self.head_relu: len(self.blocks)}
        for i, block in enumerate(self.blocks):
            for m in block.modules():
                if isinstance(m, nn.ReLU):
                    index[m] = i
        return index

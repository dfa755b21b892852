"""The one-shot supernet over the chain space: every candidate block at every layer."""

from __future__ import annotations

import torch
from torch import nn

from supernet.chain_space import ChainSpace, parse_op
from supernet.ops import batch_norm
from supernet.space import Arch


class InvertedResidual(nn.Module):
    """Expand 1x1 -> depthwise kxk (stride) -> project 1x1, each conv followed by BN, ReLU after the
    first two (none after the projection: MobileNetV2's linear bottleneck). Identity shortcut when
    the shape is kept. ReLU rather than ReLU6: the zero-shot proxies hook `nn.ReLU`.

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
        hidden = c_in * expansion
        self.residual = stride == 1 and c_in == c_out
        self.body = nn.Sequential(
            nn.Conv2d(c_in, hidden, 1, bias=False),
            batch_norm(hidden, affine, track),
            nn.ReLU(inplace=False),
            nn.Conv2d(
                hidden,
                hidden,
                kernel_size,
                stride,
                padding=kernel_size // 2,
                groups=hidden,
                bias=False,
            ),
            batch_norm(hidden, affine, track),
            nn.ReLU(inplace=False),
            nn.Conv2d(hidden, c_out, 1, bias=False),
            batch_norm(c_out, affine, track),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        return x + out if self.residual else out


class ChainSuperNet(nn.Module):
    """Stem conv 3x3 -> one chosen block per layer -> head conv 1x1 -> pool -> linear.

    Every layer holds one `InvertedResidual` per block op (`skip` holds nothing). `forward(x, arch)`
    is stateless and runs exactly the sampled path; the other blocks cost nothing and get no
    gradient. With `arch` given, only that arch's blocks are built: the standalone network (for
    retraining, and to check `ChainSpace.cost`), whose `forward` accepts that arch only.

    Args:
        space: the chain space (its layout sets the widths and depth).
        num_classes: classifier outputs.
        in_channels: input image channels.
        affine: BatchNorm affine parameters.
        track_running_stats: BatchNorm running statistics (False: batch statistics at eval too).
        arch: build only this arch's blocks (None: every block, the supernet).
    """

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
            batch_norm(c, affine, track),
            nn.ReLU(inplace=False),
        )
        self.blocks = nn.ModuleList()
        for i, layer in enumerate(space.chain):
            ops = space.ops if arch is None else (space.ops[self.arch[i]],)
            self.blocks.append(
                nn.ModuleDict(
                    {
                        op: InvertedResidual(
                            layer.c_in, layer.c_out, *parse_op(op), layer.stride, affine, track
                        )
                        for op in ops
                        if op != "skip"
                    }
                )
            )
        head = space.channels(space.head_channels)
        self.head = nn.Sequential(
            nn.Conv2d(space.chain[-1].c_out, head, 1, bias=False),
            batch_norm(head, affine, track),
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
        for block, a in zip(self.blocks, arch, strict=True):
            op = self.space.ops[a]
            if op != "skip":
                h = block[op](h)
        h = self.head_relu(self.head(h))
        return self.classifier(h.mean(dim=(2, 3)))

    def block_index(self) -> dict[nn.Module, int]:
        """Maps every ReLU to its layer (stem -1, layers from 0; the head's ReLU is
        `num_decisions`)."""
        index: dict[nn.Module, int] = {self.stem[2]: -1, self.head_relu: len(self.blocks)}
        for i, block in enumerate(self.blocks):
            for m in block.modules():
                if isinstance(m, nn.ReLU):
                    index[m] = i
        return index

"""Candidate operations and fixed blocks of the NAS-Bench-201 skeleton."""

from __future__ import annotations

import torch
from torch import nn


def batch_norm(channels: int, affine: bool, track_running_stats: bool) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, affine=affine, track_running_stats=track_running_stats)


class ReLUConvBN(nn.Sequential):
    """ReLU -> Conv (no bias) -> BN, NB201's `nor_conv_kxk`.

    Shapes:
        input `(B, C_in, H, W)`, output `(B, C_out, H / stride, W / stride)`.
    """

    def __init__(
        self, c_in: int, c_out: int, kernel_size: int, stride: int, affine: bool, track: bool
    ) -> None:
        super().__init__(
            nn.ReLU(inplace=False),  # not in place: proxies hook the pre-activation
            nn.Conv2d(c_in, c_out, kernel_size, stride, padding=kernel_size // 2, bias=False),
            batch_norm(c_out, affine, track),
        )


class Zero(nn.Module):
    """The `none` op. The supernet never calls it: a `none` edge contributes nothing and costs nothing."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x)


def make_op(name: str, channels: int, affine: bool, track: bool) -> nn.Module:
    """One candidate op of an NB201 cell edge (stride 1, channels in = out)."""
    if name == "none":
        return Zero()
    if name == "skip_connect":
        return nn.Identity()
    if name == "nor_conv_1x1":
        return ReLUConvBN(channels, channels, 1, 1, affine, track)
    if name == "nor_conv_3x3":
        return ReLUConvBN(channels, channels, 3, 1, affine, track)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise ValueError(f"unknown op {name!r}")


class ResidualReduction(nn.Module):
    """NB201's reduction block: two ReLUConvBN (the first with stride 2) plus a pooled 1x1 shortcut.

    Shapes:
        input `(B, C_in, H, W)`, output `(B, C_out, H / 2, W / 2)`.
    """

    def __init__(self, c_in: int, c_out: int, affine: bool, track: bool) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, 2, affine, track)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, affine, track)
        self.downsample = nn.Sequential(
            nn.AvgPool2d(kernel_size=2, stride=2, padding=0),
            nn.Conv2d(c_in, c_out, 1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))

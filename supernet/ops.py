"""Candidate operations and fixed blocks of the NAS-Bench-201 skeleton."""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn


class BatchNorm2d(nn.BatchNorm2d):
    """`nn.BatchNorm2d` that keeps NHWC (channels_last) inputs fast on CPUs.

    On a CPU torch's BatchNorm kernels for an NHWC image tensor are several times slower than for
    NCHW (forward + backward of a bf16 `(128, 16, 32, 32)`: 15.5 ms against 1.6 ms on a 2-core AMD
    EPYC), which cost more than NHWC convolutions gain. The same memory viewed as `(B*H*W, C, 1,
    1)` is an NCHW tensor, whose kernel takes 2.3 ms: this module normalises that view. Same
    statistics, parameters, buffers and state-dict keys; elsewhere (NCHW inputs, GPUs) it is
    `nn.BatchNorm2d`.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return as_nchw(super().forward, x)


def is_nhwc(x: torch.Tensor) -> bool:
    """Whether `x` is an image batch laid out NHWC (channels_last) and not also NCHW (as a tensor
    with one channel or a 1x1 image is both)."""
    return (
        x.dim() == 4
        and not x.is_contiguous()
        and x.is_contiguous(memory_format=torch.channels_last)
    )


def as_nchw(norm: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """`norm(x)` for a per-channel normalisation `norm`; an NHWC `x` on a CPU goes through as its
    `(B*H*W, C, 1, 1)` NCHW view (see `BatchNorm2d`) and comes back NHWC."""
    if x.device.type != "cpu" or not is_nhwc(x):
        return norm(x)
    b, c, h, w = x.shape
    y = norm(x.permute(0, 2, 3, 1).reshape(b * h * w, c, 1, 1))
    return y.reshape(b, h, w, c).permute(0, 3, 1, 2)


def batch_norm(channels: int, affine: bool, track_running_stats: bool) -> nn.BatchNorm2d:
    return BatchNorm2d(channels, affine=affine, track_running_stats=track_running_stats)


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


class SharedConvs(nn.Module):
    """An edge's `nor_conv_1x1` and `nor_conv_3x3` with one 3x3 weight: the 1x1 is its centre.

    ReLU -> conv (the whole 3x3 kernel, or its centre slice with no padding) -> BN. With `share_bn`
    both kernels use one BatchNorm, else each its own. Given the same (sliced) weights, each kernel
    computes exactly the standalone `ReLUConvBN` of that size. Why: with separate weights per op,
    single-path training left the digits supernet's reference archs at 10-38% (BENCHMARKS.md); this
    makes an edge's two convs agree on what a channel means, as the chain's entangled blocks do.

    Shapes:
        input `(B, C, H, W)`, output `(B, C, H, W)`.
    """

    kernel_sizes = (1, 3)

    def __init__(self, channels: int, affine: bool, track: bool, share_bn: bool) -> None:
        super().__init__()
        self.relu = nn.ReLU(inplace=False)  # a module: the proxies hook the pre-activation
        self.conv = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bns = nn.ModuleList(
            batch_norm(channels, affine, track) for _ in range(1 if share_bn else 2)
        )

    def forward(self, x: torch.Tensor, kernel_size: int) -> torch.Tensor:
        if kernel_size not in self.kernel_sizes:
            raise ValueError(f"shared convs: kernel {kernel_size}, expected one of (1, 3)")
        w = self.conv.weight if kernel_size == 3 else self.conv.weight[:, :, 1:2, 1:2]
        bn = self.bns[0 if len(self.bns) == 1 else self.kernel_sizes.index(kernel_size)]
        return bn(F.conv2d(self.relu(x), w, None, 1, kernel_size // 2))


class ConvSlice(nn.Module):
    """`nor_conv_kxk` of an edge whose convs share weights: calls the edge's `SharedConvs` with
    kernel k. Holds no parameters (the `SharedConvs` is registered in the cell, not here), so the
    edge's weights appear once in the state dict."""

    def __init__(self, shared: SharedConvs, kernel_size: int) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self._shared = (shared,)  # a tuple: not registered as a submodule

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._shared[0](x, self.kernel_size)


class AvgPool3x3(nn.Module):
    """NB201's `avg_pool_3x3`: 3x3 mean, stride 1, padding 1, the padding not counted (as
    `nn.AvgPool2d(3, 1, 1, count_include_pad=False)`), computed as a depthwise convolution with a
    box of ones divided by each window's size. It equals that module within float rounding
    (tests/test_ops.py checks it in float64). Its forward and backward on a bf16 NHWC batch of
    (128, 16, 32, 32), 2 threads of an AMD EPYC: 1.5 ms, against 8.9 ms for the shifted adds it
    replaced and 24 ms for torch's avg_pool2d (fp32 NCHW: 4.3, 11.8 and 18.4 ms); BENCHMARKS.md.
    Under autocast it computes in the autocast dtype, as a convolution does.

    Shapes:
        x `(B, C, H, W)` -> `(B, C, H, W)`.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        total = F.conv2d(x, box_kernel(c, x.device, x.dtype), padding=1, groups=c)
        divisor = window_divisor(*total.shape[1:], total.device, total.dtype, is_nhwc(total))
        return total / divisor


@functools.cache
def box_kernel(c: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """A depthwise 3x3 kernel of ones for `c` channels (no gradient).

    Shapes:
        `(c, 1, 3, 3)`.
    """
    return torch.ones(c, 1, 3, 3, device=device, dtype=dtype)


@functools.cache
def window_sizes(h: int, w: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """How many of a 3x3 window's cells (stride 1, padding 1) fall inside an h x w map: 4 in the
    corners, 6 on the edges, 9 inside.

    Shapes:
        `(h, w)`.
    """

    def inside(n: int) -> torch.Tensor:
        return torch.tensor([min(i + 1, n - 1) - max(i - 1, 0) + 1 for i in range(n)])

    return torch.outer(inside(h), inside(w)).to(device=device, dtype=dtype)


@functools.cache
def window_divisor(
    c: int, h: int, w: int, device: torch.device, dtype: torch.dtype, channels_last: bool
) -> torch.Tensor:
    """`window_sizes` repeated over `c` channels, in NHWC memory order when `channels_last`. A
    `(h, w)` divisor broadcast over an NHWC bf16 tensor took torch's slow path on a CPU (2.6 ms
    against 0.2 for a `(128, 16, 32, 32)` batch on an AMD EPYC); one laid out like the tensor
    does not.

    Shapes:
        `(1, c, h, w)`.
    """
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    sizes = window_sizes(h, w, device, dtype).expand(1, c, h, w)
    return sizes.contiguous(memory_format=fmt)


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
        return AvgPool3x3()
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

"""The candidate ops: `AvgPool3x3` computes what torch's avg_pool2d without padding counts does;
`BatchNorm2d` computes what `nn.BatchNorm2d` does, in NHWC as in NCHW."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from supernet.ops import AvgPool3x3, BatchNorm2d, window_sizes


@pytest.mark.parametrize("shape", [(2, 3, 8, 8), (4, 5, 7, 3), (1, 2, 1, 1), (3, 1, 2, 5)])
def test_avg_pool_3x3_equals_torch_without_padding_counts(shape) -> None:
    x = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    ours = AvgPool3x3()(x)
    ref = F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-12)
    g = torch.randn_like(ref)
    (g_ours,) = torch.autograd.grad(ours, x, g)
    (g_ref,) = torch.autograd.grad(ref, x, g)
    torch.testing.assert_close(g_ours, g_ref, rtol=0, atol=1e-12)


def test_window_sizes() -> None:
    sizes = window_sizes(3, 4, torch.device("cpu"), torch.float32)
    assert sizes.tolist() == [[4, 6, 6, 4], [6, 9, 9, 6], [4, 6, 6, 4]]


def test_avg_pool_3x3_backward_is_itself_differentiable() -> None:
    # a depthwise convolution of ones over window sizes: second derivatives must still flow
    x = torch.randn(2, 2, 5, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(AvgPool3x3(), (x,))
    assert torch.autograd.gradgradcheck(AvgPool3x3(), (x,))


@pytest.mark.parametrize("track", [False, True])
def test_batch_norm_in_nhwc_is_nn_batch_norm(track: bool) -> None:
    torch.manual_seed(0)
    ref = torch.nn.BatchNorm2d(5, affine=True, track_running_stats=track).double()
    with torch.no_grad():
        ref.weight.uniform_(0.5, 1.5)
        ref.bias.uniform_(-1, 1)
    ours = BatchNorm2d(5, affine=True, track_running_stats=track).double()
    ours.load_state_dict(ref.state_dict())
    assert list(ours.state_dict()) == list(ref.state_dict())
    x = 3 * torch.randn(4, 5, 6, 7, dtype=torch.float64) + 1
    x_nhwc = x.contiguous(memory_format=torch.channels_last).requires_grad_(True)
    x_nchw = x.clone().requires_grad_(True)
    g = torch.randn_like(x)
    for mode in ("train", "eval"):
        ours.train(mode == "train")
        ref.train(mode == "train")
        y_ours, y_ref = ours(x_nhwc), ref(x_nchw)
        assert y_ours.is_contiguous(memory_format=torch.channels_last)
        torch.testing.assert_close(y_ours, y_ref, rtol=0, atol=1e-12)
        grads_ours = torch.autograd.grad(y_ours, (x_nhwc, ours.weight, ours.bias), g)
        grads_ref = torch.autograd.grad(y_ref, (x_nchw, ref.weight, ref.bias), g)
        for a, b in zip(grads_ours, grads_ref):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-10)
        for name, buf in ref.named_buffers():  # running statistics moved the same way
            torch.testing.assert_close(dict(ours.named_buffers())[name], buf, rtol=0, atol=1e-12)


def test_sliced_batch_norm_in_nhwc_equals_nchw() -> None:
    from supernet.chain_model import SlicedBatchNorm

    torch.manual_seed(0)
    a = SlicedBatchNorm(8, affine=True, track_running_stats=True).double()
    with torch.no_grad():
        a.weight.uniform_(0.5, 1.5)
    b = SlicedBatchNorm(8, affine=True, track_running_stats=True).double()
    b.load_state_dict(a.state_dict())
    x = 2 * torch.randn(3, 5, 4, 6, dtype=torch.float64) - 1  # 5 of the 8 channels
    x_nhwc = x.contiguous(memory_format=torch.channels_last).requires_grad_(True)
    x_nchw = x.clone().requires_grad_(True)
    y_nhwc, y_nchw = a(x_nhwc), b(x_nchw)
    assert y_nhwc.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(y_nhwc, y_nchw, rtol=0, atol=1e-12)
    g = torch.randn_like(x)
    ga = torch.autograd.grad(y_nhwc, (x_nhwc, a.weight), g)
    gb = torch.autograd.grad(y_nchw, (x_nchw, b.weight), g)
    for u, v in zip(ga, gb):
        torch.testing.assert_close(u, v, rtol=0, atol=1e-10)
    torch.testing.assert_close(a.running_mean, b.running_mean, rtol=0, atol=1e-12)
    torch.testing.assert_close(a.running_var, b.running_var, rtol=0, atol=1e-12)

"""The candidate ops: `AvgPool3x3` computes what torch's avg_pool2d without padding counts does."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from supernet.ops import AvgPool3x3, window_sizes


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
    # its backward is hand-written (shifted adds): second derivatives must still flow
    x = torch.randn(2, 2, 5, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(AvgPool3x3(), (x,))
    assert torch.autograd.gradgradcheck(AvgPool3x3(), (x,))

"""WRCor: weighted response correlation of a freshly initialised network.

For one fixed batch (B images, their labels), one forward and one backward pass of the cross-entropy
loss with BatchNorm in training mode. Every ReLU call is a response: its input (the pre-activation)
flattened to `(B, D)`, and the gradient of the loss with respect to that input along this ReLU, `(B, D)`.
For each, the `(B, B)` matrix of absolute Pearson correlations between samples. With l the position of
the ReLU's block (cells and reduction blocks from 0; 17 for the head of the 17-block NB201 skeleton),

    K = sum over responses of 2^l (|C_act| + |C_grad|),    score = log det K  (higher is better).

Zero-variance rows: a row whose centred norm is at most 1e-5 of its norm (all zeros included; 1e-5 is
100x float32's rounding of a constant row's mean) has no defined correlation. Such rows are taken as
perfectly correlated with each other (two constant rows are identical up to scale) and uncorrelated
with every varying row; the diagonal is 1. A response that is constant for every sample (a conv fed by
a dead node, the gradient of an op whose output is unused) thus adds a rank-one all-ones matrix that
tells no two samples apart, and a network dead from input to output gets a singular K, which scores
(through the ridge of `logdet_ridge`) below every live one. Treating them as uncorrelated (identity)
instead would give dead networks the highest score.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from supernet.model import SuperNet
from supernet.proxies.common import (
    MAX_STACK,
    group_by_size,
    logdet_ridge,
    recorder_for,
    weights_frozen,
    workspace_for,
)
from supernet.proxies.registry import ProxyContext, register_proxy
from supernet.space import Arch

DEGENERATE_REL = 1e-5


def abs_corr_sum(
    responses: list[torch.Tensor], weights: list[float], workspace: torch.Tensor | None = None
) -> torch.Tensor:
    """sum_i weights[i] |C_i| over the absolute sample correlation matrices of `responses`.

    Responses of equal size are copied into one stack, centred in place and correlated with one batched
    matmul; the centred Gram matrix is normalised afterwards, on the `(B, B)` side.

    Args:
        responses: each `(B, ...)`, flattened to `(B, D_i)`.
        weights: one per response.
        workspace: float32 scratch of `MAX_STACK` elements on the responses' device (see
            `workspace_for`); None allocates per call.

    Shapes:
        returns `(B, B)` float64.

    Raises:
        ValueError: no response (K has no defined size; never the case for a network of the
            space, whose head's ReLU always runs: see `NO_RESPONSE`).
    """
    if not responses:
        raise ValueError("abs_corr_sum needs at least one response; got none")
    if len(weights) != len(responses):
        raise ValueError(f"{len(responses)} responses but {len(weights)} weights")
    B = responses[0].shape[0]
    device = responses[0].device
    if workspace is None:
        workspace = torch.empty(MAX_STACK, dtype=torch.float32, device=device)
    K = torch.zeros(B, B, dtype=torch.float64, device=device)
    for part in group_by_size(responses, B):
        D = responses[part[0]][0].numel()
        X = workspace[: len(part) * B * D].view(len(part), B, D)
        for j, i in enumerate(part):
            X[j].copy_(responses[i].reshape(B, D))
        mean = X.mean(dim=2, keepdim=True)
        X.sub_(mean)
        G = torch.bmm(X, X.transpose(1, 2)).double()  # centred Gram, (n, B, B)
        var = G.diagonal(dim1=1, dim2=2)  # (n, B): D x variance
        total = var + D * mean.squeeze(2).double() ** 2  # |x|^2 = |x - mean|^2 + D mean^2
        degenerate = var <= DEGENERATE_REL**2 * total
        inv = torch.where(degenerate, 0.0, var.clamp_min(1e-300).rsqrt())
        C = (G * inv[:, :, None] * inv[:, None, :]).abs()
        d = degenerate.double()
        C = C + d[:, :, None] * d[:, None, :]
        C.diagonal(dim1=1, dim2=2).fill_(1.0)
        # Python-scalar weights: no host-to-device copy, so a GPU never waits here.
        torch._foreach_mul_(list(C.unbind(0)), [weights[i] for i in part])
        K += C.sum(0)
    return K


def wrcor_matrix(
    net: SuperNet, arch: Arch, x: torch.Tensor, y: torch.Tensor, ctx: ProxyContext
) -> torch.Tensor:
    """WRCor's K for the path `arch` of `net` on the batch `(x, y)`.

    Shapes:
        x `(B, C, H, W)`, y `(B,)` -> K `(B, B)` float64.
    """
    rec = recorder_for(net, ctx.cache)
    # Responses carry gradients through the input, not the weights: what depends on the batch
    # requires a gradient, a response of a dead node (a constant) still does not.
    x = x.detach().requires_grad_()
    # ctx.bf16: the passes and the Gram matmuls under bf16 autocast
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=ctx.bf16):
        with torch.enable_grad(), weights_frozen(net), rec.record() as records:
            loss = F.cross_entropy(net(x, arch), y)
            levels = [lvl for lvl, _ in records]
            acts = [a for _, a in records]
            # Only the responses' gradients are asked for: no weight gradient is computed or
            # stored. A constant input (a conv on a dead node) or an op whose output is unused has
            # zero gradient. A loss that does not depend on the batch (a network cut from its
            # input) gives none.
            live = [a for a in acts if a.requires_grad] if loss.requires_grad else []
            found = iter(torch.autograd.grad(loss, live, allow_unused=True) if live else ())
        grads = [next(found) if a.requires_grad and live else None for a in acts]
        grads = [torch.zeros_like(a) if g is None else g for a, g in zip(acts, grads)]
        weights = [2.0**lvl for lvl in levels]
        ws = workspace_for(x.device, ctx.cache)
        return abs_corr_sum([a.detach() for a in acts] + grads, weights + weights, ws)


@register_proxy("wrcor", bf16=True)
def wrcor(
    net: SuperNet, arch: Arch, x: torch.Tensor, y: torch.Tensor, ctx: ProxyContext
) -> torch.Tensor:
    """log det of WRCor's K (see the module docstring); counts ridged archs in `wrcor/ridge`."""
    score, ridged = logdet_ridge(wrcor_matrix(net, arch, x, y, ctx))
    ctx.count("wrcor/ridge", ridged)
    return score

"""SynFlow (Tanaka et al., 2020), as zero-cost NAS scores it (Abdelfattah et al., 2021).

With every weight replaced by its absolute value, BatchNorm removed, and an all-ones input image in
float64, R = sum of the logits; the score is sum over the path's parameters of theta * dR/dtheta.
Parameters off the path get no gradient and add nothing. Data-free: `x` gives only the image shape.
"""

from __future__ import annotations

import torch
from torch import nn

from supernet.model import SuperNet
from supernet.proxies.common import per_net
from supernet.proxies.registry import ProxyContext, register_proxy
from supernet.space import Arch


def synflow_net(net: SuperNet, cache: dict) -> tuple[SuperNet, list[nn.Parameter]]:
    """`net`'s float64, BatchNorm-free, absolute-weight copy and its parameters, built once and
    kept in `cache` while `net` lives (`per_net`)."""
    return per_net(cache, "synflow_net", net, lambda: build_synflow_net(net))


def build_synflow_net(net: SuperNet) -> tuple[SuperNet, list[nn.Parameter]]:
    bn = net.stem[1]
    copy = type(net)(
        net.space,
        net.classifier.out_features,
        net.stem[0].in_channels,
        affine=bn.affine,
        track_running_stats=bn.track_running_stats,
    )
    copy.load_state_dict(net.state_dict())
    for parent in list(copy.modules()):
        for name, child in parent.named_children():
            if isinstance(child, nn.BatchNorm2d):
                setattr(parent, name, nn.Identity())
    copy = copy.to(device=next(net.parameters()).device, dtype=torch.float64)
    with torch.no_grad():
        for p in copy.parameters():
            p.abs_()
    return copy, list(copy.parameters())


@register_proxy("synflow")
def synflow(
    net: SuperNet, arch: Arch, x: torch.Tensor, y: torch.Tensor, ctx: ProxyContext
) -> torch.Tensor:
    snet, params = synflow_net(net, ctx.cache)
    ones = torch.ones((1, *x.shape[1:]), dtype=torch.float64, device=x.device)
    with torch.enable_grad():
        R = snet(ones, arch).sum()
        grads = torch.autograd.grad(R, params, allow_unused=True)
    used = [(p, g) for p, g in zip(params, grads) if g is not None]
    return torch.stack([(p * g).sum() for p, g in used]).sum()

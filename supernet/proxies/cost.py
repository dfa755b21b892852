"""Cost proxies: the standalone network's parameters and FLOPs, from the search space's exact count."""

from __future__ import annotations

import torch

from supernet.model import SuperNet
from supernet.proxies.registry import ProxyContext, register_proxy
from supernet.space import Arch


@register_proxy("params")
def params(
    net: SuperNet, arch: Arch, x: torch.Tensor, y: torch.Tensor, ctx: ProxyContext
) -> float:
    """Parameters of the standalone network, in millions."""
    return ctx.space.cost(arch, ctx.input_shape, ctx.num_classes).params_M


@register_proxy("flops")
def flops(net: SuperNet, arch: Arch, x: torch.Tensor, y: torch.Tensor, ctx: ProxyContext) -> float:
    """Multiply-adds of the standalone network, in millions."""
    return ctx.space.cost(arch, ctx.input_shape, ctx.num_classes).flops_M

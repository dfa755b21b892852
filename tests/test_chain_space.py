"""The chain search space and its supernet: encodings, skip rules, exact costs, the sampled path."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from predictor.module import torch_threads
from supernet.chain_model import ChainSuperNet
from supernet.chain_space import ChainSpace
from supernet.evaluator import SubnetEvaluator


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    # Tiny convs: a second thread only adds contention (1.5 s a step instead of 17 ms when loaded).
    with torch_threads(1):
        yield


def tiny() -> ChainSpace:
    """2 stages of 2 layers, widths 8 and 16: 6 * 7 * 6 * 7 = 1,764 archs."""
    return ChainSpace(
        widths=(8, 16), layers=(2, 2), strides=(1, 2), stem_channels=8, head_channels=32
    )


def direct_cost(net: nn.Module, arch: tuple[int, ...], shape: tuple[int, ...]) -> tuple[int, int]:
    """MACs by forward hooks on Conv2d / Linear (bias included) and params by counting."""
    macs = []

    def hook(m: nn.Module, args: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        if isinstance(m, nn.Conv2d):
            per_out = m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]
            macs.append(out[0].numel() * (per_out + (m.bias is not None)))
        else:
            macs.append(m.in_features * m.out_features + m.out_features)

    handles = [
        m.register_forward_hook(hook)
        for m in net.modules()
        if isinstance(m, nn.Conv2d | nn.Linear)
    ]
    with torch.no_grad():
        net(torch.zeros(1, *shape), arch)
    for h in handles:
        h.remove()
    return sum(macs), sum(p.numel() for p in net.parameters())


def test_sizes_and_index_round_trip() -> None:
    space = tiny()
    assert space.num_decisions == 4 and space.size == 6 * 7 * 6 * 7
    archs = list(space.all_archs())
    assert len(archs) == space.size == len(set(archs))
    assert [space.index(a) for a in archs] == list(range(space.size))
    assert all(space.from_index(space.index(a)) == a for a in archs[::37])
    assert all(space.parse(space.to_str(a)) == a for a in archs[::37])
    default = ChainSpace()
    assert default.num_decisions == 20 and default.size == 6**6 * 7**14
    with pytest.raises(ValueError, match="too many to enumerate"):
        default.all_archs()
    rng = random.Random(0)
    for _ in range(50):
        a = default.sample(rng)
        assert default.parse(default.to_str(a)) == a
        assert default.from_index(default.index(a)) == a


def test_arch_string_format_and_errors() -> None:
    space = tiny()
    assert space.to_str((0, 6, 5, 3)) == "ir_k3_e3|skip|ir_k7_e6|ir_k5_e6"
    assert space.iso_key((0, 6, 5, 3)) == "ir_k3_e3|skip|ir_k7_e6|ir_k5_e6"
    with pytest.raises(ValueError, match=r"skip on layer\(s\) \[2\].*first layer of a stage"):
        space.parse("ir_k3_e3|skip|skip|ir_k5_e6")
    with pytest.raises(ValueError, match="first layer"):
        space.check((6, 0, 0, 0))
    with pytest.raises(ValueError, match=r"malformed arch string 'ir_k3_e3\|skip'.*4 ops"):
        space.parse("ir_k3_e3|skip")
    with pytest.raises(ValueError, match="unknown op 'ir_k9_e3'"):
        space.parse("ir_k3_e3|ir_k9_e3|ir_k3_e3|ir_k3_e3")
    with pytest.raises(ValueError, match="outside"):
        space.from_index(space.size)
    with pytest.raises(ValueError, match="equal length"):
        ChainSpace(widths=(8, 16), layers=(2,), strides=(1, 2))


@pytest.mark.parametrize("preset", ["tiny", "default"])
def test_cost_equals_direct_count(preset: str) -> None:
    space = tiny() if preset == "tiny" else ChainSpace()
    shape = (3, 32, 32) if preset == "default" else (1, 9, 9)  # odd size: ceil on stride 2
    rng = random.Random(1)
    archs = [space.sample(rng) for _ in range(3 if preset == "tiny" else 1)]
    archs.append(tuple(0 if ly.first else space.skip for ly in space.chain))
    for arch in archs:
        net = ChainSuperNet(space, 10, shape[0], affine=True, arch=arch)
        flops, params = direct_cost(net, arch, shape)
        cost = space.cost(arch, shape, 10)
        assert cost.flops_M * 1e6 == pytest.approx(flops, abs=0.5)
        assert cost.params_M * 1e6 == pytest.approx(params, abs=0.5)


def test_supernet_runs_only_the_sampled_path() -> None:
    space = tiny()
    net = ChainSuperNet(space, 10, 1)
    arch = (1, 6, 4, 2)
    out = net(torch.randn(4, 1, 8, 8), arch)
    assert out.shape == (4, 10)
    out.sum().backward()
    for i, block in enumerate(net.blocks):
        for op, m in block.items():
            grads = [p.grad for p in m.parameters()]
            if space.ops[arch[i]] == op:
                assert all(g is not None and g.abs().sum() > 0 for g in grads)
            else:
                assert all(g is None for g in grads), (i, op)
    assert "skip" not in net.blocks[1]
    assert set(net.block_index().values()) == {-1, 0, 1, 2, 3, 4}
    with pytest.raises(ValueError, match="standalone network"):
        ChainSuperNet(space, 10, 1, arch=arch)(torch.randn(2, 1, 8, 8), (0, 0, 0, 0))


def test_training_steps_reduce_the_loss() -> None:
    torch.manual_seed(0)
    space = tiny()
    net = ChainSuperNet(space, 4, 1)
    x, y = torch.randn(32, 1, 8, 8), torch.randint(0, 4, (32,))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    rng = random.Random(0)
    probe = [space.sample(random.Random(s)) for s in range(3)]

    def probe_loss() -> float:
        with torch.no_grad():
            return sum(F.cross_entropy(net(x, a), y).item() for a in probe) / len(probe)

    before = probe_loss()
    for _ in range(60):
        opt.zero_grad()
        F.cross_entropy(net(x, space.sample(rng)), y).backward()
        opt.step()
    assert probe_loss() < before * 0.85  # 0.75 with these seeds; random labels learn slowly


@pytest.mark.parametrize("bn", ["recalibrate", "batch", "inherit"])
def test_subnet_evaluator_accepts_the_chain_supernet(bn: str) -> None:
    space = tiny()
    net = ChainSuperNet(space, 4, 1, track_running_stats=True)
    batches = [(torch.randn(8, 1, 8, 8), torch.randint(0, 4, (8,))) for _ in range(2)]
    before = {k: v.clone() for k, v in net.state_dict().items()}
    result = SubnetEvaluator(net, batches, bn, calib=batches).evaluate((0, 6, 1, 2))
    assert result.images == 16 and 0 <= result.acc <= 100
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())

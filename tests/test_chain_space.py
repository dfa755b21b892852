"""The chain search space and its supernet: encodings, skip rules, exact costs, the sampled path."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from predictor.module import torch_threads
from supernet.chain_model import ChainSuperNet
from supernet.chain_space import ChainSpace, parse_op
from supernet.evaluator import SubnetEvaluator
from supernet.module import check_meta, net_meta


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
    """MACs by torch's FLOP counter over one forward pass (convs and matmuls, 2 FLOPs a MAC; plus
    the classifier's bias, which the counter leaves out) and params by counting."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        net.eval()(torch.zeros(1, *shape), arch)
    macs = counter.get_total_flops() // 2 + net.classifier.out_features
    return macs, sum(p.numel() for p in net.parameters())


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


def test_supernet_runs_only_the_sampled_slice() -> None:
    space = tiny()  # widths 8, 16: layer 2 goes 8 -> 16 with stride 2
    net = ChainSuperNet(space, 10, 1)
    arch = (1, 6, 4, 2)  # ir_k3_e6 | skip | ir_k7_e3 | ir_k5_e3
    out = net(torch.randn(4, 1, 8, 8), arch)
    assert out.shape == (4, 10)
    out.sum().backward()
    assert all(p.grad is None for p in net.blocks[1].parameters())  # skipped
    for i in (0, 2, 3):
        k, e = parse_op(space.ops[arch[i]])
        block, hidden, o = net.blocks[i], space.chain[i].c_in * e, (7 - k) // 2
        inside = torch.zeros_like(block.depthwise.weight, dtype=torch.bool)
        inside[:hidden, :, o : o + k, o : o + k] = True
        dw = block.depthwise.weight.grad
        assert dw[inside].abs().sum() > 0 and not dw[~inside].any(), i
        assert block.expand.weight.grad[:hidden].abs().sum() > 0
        assert not block.expand.weight.grad[hidden:].any()
        assert not block.project.weight.grad[:, hidden:].any()
    assert set(net.block_index().values()) == {-1, 0, 1, 2, 3, 4}
    with pytest.raises(ValueError, match="standalone network"):
        ChainSuperNet(space, 10, 1, arch=arch)(torch.randn(2, 1, 8, 8), (0, 0, 0, 0))


def test_standalone_with_the_supernet_slices_computes_the_same_function() -> None:
    torch.manual_seed(0)
    space = tiny()
    arch = (5, 3, 0, 6)  # ir_k7_e6 | ir_k5_e6 | ir_k3_e3 | skip
    net = ChainSuperNet(space, 10, 1, affine=True, track_running_stats=True)
    alone = ChainSuperNet(space, 10, 1, affine=True, track_running_stats=True, arch=arch)
    state = {}
    for name, t in alone.state_dict().items():
        src = net.state_dict()[name]
        if t.dim() == 4 and t.shape[-1] < src.shape[-1]:  # a smaller depthwise kernel: the centre
            o = (src.shape[-1] - t.shape[-1]) // 2
            src = src[..., o : o + t.shape[-1], o : o + t.shape[-2]]
        state[name] = src[tuple(slice(0, n) for n in t.shape)] if t.dim() else src
    alone.load_state_dict(state)
    x = torch.randn(6, 1, 8, 8)
    for mode in (True, False):  # batch statistics, then the (sliced) running statistics
        net.train(mode), alone.train(mode)
        torch.testing.assert_close(net(x, arch), alone(x, arch))
    for name, buf in alone.named_buffers():
        if "running_mean" in name:  # the sliced running statistics were updated in place
            assert torch.equal(net.get_buffer(name)[: len(buf)], buf), name


def test_a_checkpoint_without_the_entangled_layout_is_refused_by_name() -> None:
    meta = net_meta(ChainSuperNet(tiny(), 10, 1))
    old = {k: v for k, v in meta.items() if k != "weights"}  # one block per op, before entangling
    with pytest.raises(ValueError, match="weights: checkpoint has None, config has 'entangled'"):
        check_meta(old, meta, "old.ckpt")


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

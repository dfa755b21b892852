"""NB201 supernet with shared edge convs: the 1x1 is the centre of the 3x3 (optionally one BN)."""

import pytest
import torch

from supernet.model import SuperCell, SuperNet, layout_options
from supernet.module import check_meta, net_meta
from supernet.space import NB201Space

TINY = NB201Space(C=4, N=1)
CONV1, CONV3 = TINY.ops.index("nor_conv_1x1"), TINY.ops.index("nor_conv_3x3")


def sliced_state(shared: SuperNet, alone: SuperNet) -> dict[str, torch.Tensor]:
    """The standalone (separate-weights) net's state taken from the shared net: each edge's 3x3
    weight whole, its centre for the 1x1, and the edge's BatchNorm (shared, or per kernel)."""
    src, state = shared.state_dict(), {}
    for name in alone.state_dict():
        parts = name.split(".")
        if parts[0] == "blocks" and parts[2] == "edges":  # blocks.i.edges.e.op.{1,2}.rest
            i, e, op, layer, rest = parts[1], parts[3], int(parts[4]), parts[5], parts[6:]
            prefix = f"blocks.{i}.convs.{e}"
            if layer == "1":  # the conv
                w = src[f"{prefix}.conv.weight"]
                state[name] = w if op == CONV3 else w[:, :, 1:2, 1:2]
            else:  # the BatchNorm
                shared_bn = shared.weights == "shared_convs_bn"
                k = 0 if shared_bn or op == CONV1 else 1
                state[name] = src[".".join([prefix, "bns", str(k), *rest])]
        else:
            state[name] = src[name]
    return state


@pytest.mark.parametrize("share_bn", [False, True])
def test_each_path_equals_the_standalone_net_with_the_sliced_weights(share_bn):
    torch.manual_seed(0)
    kw = dict(num_classes=10, in_channels=1, affine=True, track_running_stats=True)
    shared = SuperNet(TINY, share_convs=True, share_bn=share_bn, **kw)
    alone = SuperNet(TINY, **kw)  # what retrain trains: separate weights per op
    with torch.no_grad():  # non-trivial BN parameters, so that a wrong BN would show
        for m in shared.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5), m.bias.uniform_(-0.5, 0.5)
    x = torch.randn(6, 1, 8, 8)
    for arch in [(3, 3, 2, 1, 2, 3), (2, 2, 2, 2, 2, 2), (3, 4, 0, 2, 1, 3)]:
        # per arch: with one BN for both kernels, the standalone's two BNs see different paths
        alone.load_state_dict(sliced_state(shared, alone))
        for mode in (True, False):  # batch statistics (updating the running ones), then running
            shared.train(mode), alone.train(mode)
            torch.testing.assert_close(shared(x, arch), alone(x, arch))
        # the running statistics of the path's convs were updated alike
        expected, found = sliced_state(shared, alone), alone.state_dict()
        on_path = [
            f"blocks.0.edges.{e}.{op}.2.{buf}"
            for e, op in enumerate(arch)
            if op in (CONV1, CONV3)
            for buf in ("running_mean", "running_var")
        ]
        assert on_path and all(torch.equal(found[n], expected[n]) for n in on_path)
        assert not torch.equal(found[on_path[0]], torch.zeros_like(found[on_path[0]]))


def test_a_1x1_path_trains_only_the_centre_of_the_edge_weight():
    net = SuperNet(TINY, num_classes=10, share_convs=True)
    arch = (2, 3, 0, 1, 4, 2)  # conv1, conv3, none, skip, pool, conv1
    net(torch.randn(4, 3, 8, 8), arch).sum().backward()
    cell = next(b for b in net.blocks if isinstance(b, SuperCell))
    centre = torch.zeros(3, 3, dtype=torch.bool)
    centre[1, 1] = True
    for e, op in enumerate(arch):
        g = cell.convs[e].conv.weight.grad
        if op == CONV1:
            assert g[..., centre].abs().sum() > 0 and not g[..., ~centre].any(), e
        elif op == CONV3:
            assert g[..., ~centre].abs().sum() > 0, e
        else:
            assert g is None, e
    # the edge ops hold no weights of their own: each conv weight is stored once
    assert not any("edges" in name for name, _ in net.named_parameters())


def test_layout_is_in_the_checkpoint_meta_and_round_trips():
    for share_bn, layout in [(False, "shared_convs"), (True, "shared_convs_bn")]:
        meta = net_meta(SuperNet(TINY, 10, share_convs=True, share_bn=share_bn))
        assert meta["weights"] == layout
        assert layout_options(layout) == {"share_convs": True, "share_bn": share_bn}
    assert "weights" not in net_meta(SuperNet(TINY, 10))  # old checkpoints keep matching
    with pytest.raises(
        ValueError, match="weights: checkpoint has None, config has 'shared_convs'"
    ):
        check_meta(
            net_meta(SuperNet(TINY, 10)), net_meta(SuperNet(TINY, 10, share_convs=True)), "x"
        )
    with pytest.raises(ValueError, match="share_bn=True needs share_convs=True"):
        SuperNet(TINY, 10, share_bn=True)
    with pytest.raises(ValueError, match="unknown supernet weights layout 'odd'"):
        layout_options("odd")


def test_unused_ops_are_not_called_and_zero_input_matches_the_separate_net():
    shared = SuperNet(TINY, num_classes=10, share_convs=True).eval()
    calls = []
    cell = next(b for b in shared.blocks if isinstance(b, SuperCell))
    for ops in cell.edges:
        for o, op in enumerate(ops):
            op.register_forward_hook(lambda m, i, out, o=o: calls.append(o))
    shared(torch.randn(2, 3, 8, 8), (0, 1, 0, 0, 2, 0))
    assert 0 not in calls and sorted(set(calls)) == [1, 2]  # conv1 on a zero node still runs
    relus = [m for m in shared.modules() if isinstance(m, torch.nn.ReLU)]
    assert set(shared.block_index()) == set(relus)

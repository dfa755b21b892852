import pytest
import torch

from supernet.model import SuperNet
from supernet.space import NB201Space

TINY = NB201Space(C=4, N=1)


def test_output_shape_and_channels():
    net = SuperNet(TINY, num_classes=7, in_channels=1)
    assert net(torch.randn(3, 1, 8, 8), (3, 3, 3, 1, 3, 2)).shape == (3, 7)
    assert len(net.blocks) == TINY.num_blocks == 5


def test_only_the_sampled_path_gets_gradients():
    net = SuperNet(TINY, num_classes=10, affine=True, track_running_stats=True)
    arch = (3, 0, 2, 1, 4, 3)  # conv3, none, conv1, skip, pool, conv3
    net(torch.randn(4, 3, 8, 8), arch).sum().backward()
    for cell in (b for b in net.blocks if hasattr(b, "edges")):
        for e, ops in enumerate(cell.edges):
            for o, op in enumerate(ops):
                grads = [p.grad for p in op.parameters()]
                if o == arch[e]:
                    assert all(g is not None for g in grads)
                else:
                    assert all(g is None for g in grads), (e, o)


def test_unused_ops_are_not_called():
    net = SuperNet(TINY, num_classes=10)
    calls = []
    for cell in (b for b in net.blocks if hasattr(b, "edges")):
        for ops in cell.edges:
            for o, op in enumerate(ops):
                op.register_forward_hook(lambda m, i, out, o=o: calls.append(o))
    net(torch.randn(2, 3, 8, 8), (0, 1, 0, 0, 2, 0))
    # 'none' is never called; node 1 is zero, so only 2<-0 (skip) and 3<-1 (conv1 on zero) run.
    assert 0 not in calls and sorted(set(calls)) == [1, 2]


def test_disconnected_cell_outputs_zero():
    net = SuperNet(TINY, num_classes=10).eval()
    x = torch.randn(2, 3, 8, 8)
    cut = (3, 3, 3, 0, 0, 0)  # nothing reaches node 3
    h = net.stem(x)
    assert torch.equal(net.blocks[0](h, cut), torch.zeros_like(h))


def test_same_path_same_output_and_paths_differ():
    net = SuperNet(TINY, num_classes=10).eval()
    x = torch.randn(8, 3, 8, 8)
    a, b = (3, 3, 3, 1, 3, 2), (2, 4, 1, 3, 3, 1)
    assert torch.equal(net(x, a), net(x, a))
    assert not torch.allclose(net(x, a), net(x, b))


@pytest.mark.parametrize("affine,track", [(False, False), (True, True)])
def test_batchnorm_options(affine, track):
    net = SuperNet(TINY, num_classes=10, affine=affine, track_running_stats=track)
    bns = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and all(m.affine == affine and m.track_running_stats == track for m in bns)


def test_block_index_covers_every_relu():
    net = SuperNet(NB201Space(C=4, N=2), num_classes=10)
    index = net.block_index()
    relus = [m for m in net.modules() if isinstance(m, torch.nn.ReLU)]
    assert set(index) == set(relus)
    assert max(index.values()) == 8 and index[net.head_relu] == 8


def test_weights_hash_does_not_depend_on_memory_format() -> None:
    # NHWC 1x1 convs have a last-dim stride that is not 1 even when contiguous: the digest must
    # still be computable, and the same as in NCHW (a resumed evaluation compares it)
    from supernet.module import weights_hash

    net = SuperNet(NB201Space(C=4, N=1), num_classes=10)
    before = weights_hash(net)
    assert weights_hash(net.to(memory_format=torch.channels_last)) == before

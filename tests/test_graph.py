"""Op-on-node cell graphs: node/edge counts, one-hot features, data-flow edges, pruning, batching."""

from __future__ import annotations

import torch
from torch_geometric.data import Batch

from predictor.graph import GraphEncoder, arch_to_graph, edge_mask, full_edges, num_node_features
from supernet.space import NB201Space

SPACE = NB201Space()
ALL_CONV = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"


def test_full_edges_follow_the_data_flow() -> None:
    # nodes: 0 input, 1..6 ops on edges 1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2, 7 output
    expected = [(0, 1), (0, 2), (0, 4)]  # input feeds the ops leaving cell node 0
    expected += [(1, 3), (1, 5)]  # op 1<-0 is cell node 1, which feeds 2<-1 and 3<-1
    expected += [(2, 6), (3, 6)]  # cell node 2 = ops 2<-0 + 2<-1, feeds 3<-2
    expected += [(4, 7), (5, 7), (6, 7)]  # cell node 3 = ops into 3: the output
    assert sorted(full_edges(SPACE)) == sorted(expected)


def test_nodes_and_one_hot() -> None:
    arch = SPACE.parse(ALL_CONV)
    g = arch_to_graph(SPACE, arch, features=[1.0, 2.0])
    assert g.num_nodes == 8 and g.x.shape == (8, num_node_features(SPACE)) == (8, 7)
    assert torch.equal(g.x.sum(1), torch.ones(8))
    assert g.x[0, 0] == 1 and g.x[7, 6] == 1  # input, output types
    conv = 1 + SPACE.ops.index("nor_conv_3x3")
    assert (g.x[1:7, conv] == 1).all()
    assert g.edge_index.shape == (2, 10)  # nothing pruned when every op is live
    assert g.u.shape == (1, 2)


def test_pruning_cuts_none_ops_and_dead_ends() -> None:
    all_none = SPACE.parse("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    assert arch_to_graph(SPACE, all_none).edge_index.size(1) == 0
    assert arch_to_graph(SPACE, all_none, prune=False).edge_index.size(1) == 10
    # only 3<-0 is live: input -> op 4 -> output
    only = SPACE.parse("|none~0|+|none~0|none~1|+|nor_conv_1x1~0|none~1|none~2|")
    assert arch_to_graph(SPACE, only).edge_index.t().tolist() == [[0, 4], [4, 7]]
    # 2<-1 conv whose input node 1 is zero (1<-0 is none): a dead end, cut
    dead = SPACE.parse("|none~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|nor_conv_3x3~2|")
    assert sorted(arch_to_graph(SPACE, dead).edge_index.t().tolist()) == [[0, 4], [4, 7]]


def test_output_isolated_exactly_when_every_path_has_a_none() -> None:
    # the four input -> output paths of the NB201 cell, as edge numbers
    paths = [(3,), (0, 4), (1, 5), (0, 2, 5)]
    enc = GraphEncoder(SPACE)
    isolated = enc.masks.sum(1) == 0
    broken = torch.tensor(
        [all(any(a[e] == 0 for e in p) for p in paths) for a in SPACE.all_archs()]
    )
    assert torch.equal(isolated, broken)
    assert int(broken.sum()) == 341  # the NB201 archs at ~10% CIFAR-10 accuracy


def test_batch_equals_data_list() -> None:
    ops = torch.randint(0, 5, (64, 6), generator=torch.Generator().manual_seed(0))
    u = torch.randn(64, 3)
    for prune in (True, False):
        enc = GraphEncoder(SPACE, prune=prune)
        ref = Batch.from_data_list(
            [arch_to_graph(SPACE, tuple(o.tolist()), u[i], prune=prune) for i, o in enumerate(ops)]
        )
        b = enc.batch(ops, u)
        assert b.num_graphs == 64
        for key in ("x", "edge_index", "batch", "ptr", "u"):
            assert torch.equal(b[key], ref[key]), key
    enc = GraphEncoder(SPACE, undirected=True)
    ref = Batch.from_data_list(
        [arch_to_graph(SPACE, tuple(o.tolist()), undirected=True) for o in ops]
    )
    got = enc.batch(ops).edge_index
    assert sorted(got.t().tolist()) == sorted(ref.edge_index.t().tolist())


def test_edge_mask_length_and_index() -> None:
    enc = GraphEncoder(SPACE)
    arch = SPACE.parse(ALL_CONV)
    assert len(edge_mask(SPACE, arch)) == len(full_edges(SPACE))
    assert int(enc.index(torch.tensor([arch]))) == SPACE.index(arch)

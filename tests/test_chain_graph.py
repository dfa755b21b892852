"""Chain archs as path graphs, and the GCN predictor fitting them."""

from __future__ import annotations

import random

import pytest
import torch
from torch_geometric.data import Batch

from predictor.chain_graph import ChainGraphEncoder, chain_arch_to_graph
from predictor.module import GCNPredictor
from supernet.chain_space import ChainSpace


def tiny() -> ChainSpace:
    return ChainSpace(
        widths=(8, 16), layers=(2, 2), strides=(1, 2), stem_channels=8, head_channels=32
    )


def test_graph_layout() -> None:
    space = tiny()
    g = chain_arch_to_graph(space, (0, 6, 5, 3), undirected=False)
    assert g.x.shape == (6, len(space.ops) + 2 + 2)
    assert g.edge_index.tolist() == [[0, 1, 2, 3, 4], [1, 2, 3, 4, 5]]
    types = g.x[:, : len(space.ops) + 2].argmax(1).tolist()
    assert types == [0, 1, 7, 6, 4, len(space.ops) + 1]
    assert g.x[:, len(space.ops) + 2 :].tolist() == [
        [0, 0],
        [1, 0],
        [1, 0],
        [0, 1],
        [0, 1],
        [0, 0],
    ]
    with pytest.raises(ValueError, match="first layer"):
        chain_arch_to_graph(space, (6, 0, 0, 0))


def test_batch_equals_data_list() -> None:
    space = ChainSpace()
    rng = random.Random(0)
    archs = [space.sample(rng) for _ in range(5)]
    b = ChainGraphEncoder(space).batch(torch.tensor(archs))
    ref = Batch.from_data_list([chain_arch_to_graph(space, a) for a in archs])
    assert torch.equal(b.x, ref.x) and torch.equal(b.batch, ref.batch)
    assert sorted(map(tuple, b.edge_index.t().tolist())) == sorted(
        map(tuple, ref.edge_index.t().tolist())
    )


def test_gcn_predictor_fits_chain_graphs() -> None:
    space = tiny()  # GCNPredictor asks the space for its encoder: the chain's path graphs
    assert isinstance(GCNPredictor(space, ensemble=1).encoder, ChainGraphEncoder)
    archs = torch.tensor(list(space.all_archs()))
    flops = torch.tensor([space.cost(tuple(a), (1, 8, 8)).flops_M for a in archs.tolist()])
    perm = torch.randperm(len(archs), generator=torch.Generator().manual_seed(0))
    train, test = perm[:200], perm[200:600]
    pred = GCNPredictor(space, hidden_channels=32, pool="output+mean", epochs=40, ensemble=1)
    pred.fit(archs[train], flops[train])
    p = pred.predict(archs[test])
    rank = lambda t: t.argsort().argsort().float()  # noqa: E731
    rho = torch.corrcoef(torch.stack([rank(p), rank(flops[test])]))[0, 1]
    assert rho > 0.8

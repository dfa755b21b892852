"""Chain arch -> graph for the GNN predictor: a path graph, one node per layer
(`ChainSpace.graph_encoder`).

An arch of L layers becomes L + 2 nodes: node 0 is the stem (input), nodes 1..L the layers in
order, node L + 1 the head (output, always each graph's last node, so `pool="output"` works). Edges
follow the chain, i -> i + 1. Node features are the concatenation of
- a one-hot type over `input, <ops...>, output` (as `predictor.graph`), and
- a one-hot stage over the space's stages (input and output nodes: all zero),
so the GNN can tell a 7x7 kernel at 32x32 from one at 4x4. A `skip` layer stays a node (with the
`skip` one-hot): every arch has the same nodes and edges, only features differ.

On a 22-node path a GCN of 4 layers lets the output node see only the last 4 layers: use
`pool="mean"` or `"output+mean"` for chain spaces (`ChainSpace.graph_pool` is `mean`).
"""

from __future__ import annotations

import torch
from torch_geometric.data import Batch, Data

from supernet.chain_space import ChainSpace
from supernet.space_base import Arch


class ChainGraphEncoder:
    """Builds PyG batches from op-index tensors; the interface of `predictor.graph.GraphEncoder`
    (`num_nodes`, `in_channels`, `batch(ops, u)`: `supernet.space_base.GraphEncoder`).

    Args:
        space: the chain space.
        undirected: add every edge in both directions.
    """

    def __init__(self, space: ChainSpace, undirected: bool = True, prune: bool = True) -> None:
        """`prune` changes nothing: a chain has no dead edges."""
        self.space, self.undirected = space, undirected
        self.num_nodes = space.num_decisions + 2
        self.num_types = len(space.ops) + 2
        self.in_channels = self.num_types + len(space.widths)
        stage = torch.zeros(self.num_nodes, len(space.widths))
        for i, layer in enumerate(space.chain):
            stage[i + 1, layer.stage] = 1.0
        self.stage = stage  # (num_nodes, num_stages), the same for every arch
        src = torch.arange(self.num_nodes - 1)
        edges = torch.stack([src, src + 1])
        self.edges = torch.cat([edges, edges.flip(0)], dim=1) if undirected else edges

    def batch(self, ops: torch.Tensor, u: torch.Tensor | None = None) -> Batch:
        """A batch of `B` graphs.

        Shapes:
            ops `(B, num_decisions)` long, u `(B, F)`; the batch's x `(B * num_nodes, in_channels)`.
        """
        ops = ops.long()
        if ops.dim() != 2 or ops.size(1) != self.space.num_decisions:
            raise ValueError(
                f"chain graph: ops of shape {tuple(ops.shape)}; expected (B, "
                f"{self.space.num_decisions})"
            )
        B, n = ops.size(0), self.num_nodes
        types = torch.cat(
            [ops.new_zeros(B, 1), ops + 1, ops.new_full((B, 1), self.num_types - 1)], dim=1
        )
        onehot = torch.nn.functional.one_hot(types, self.num_types).float()  # (B, n, types)
        x = torch.cat([onehot, self.stage.expand(B, -1, -1)], dim=2).reshape(B * n, -1)
        edge_index = (self.edges[:, None, :] + torch.arange(B)[None, :, None] * n).reshape(2, -1)
        out = Batch(
            x=x,
            edge_index=edge_index,
            batch=torch.arange(B).repeat_interleave(n),
            ptr=torch.arange(B + 1) * n,
        )
        out._num_graphs = B
        if u is not None:
            out.u = u.float().reshape(B, -1)
        return out


def chain_arch_to_graph(space: ChainSpace, arch: Arch, undirected: bool = True) -> Data:
    """One arch's graph (see the module docstring).

    Shapes:
        x `(num_decisions + 2, len(ops) + 2 + num_stages)`, edge_index `(2, E)`.
    """
    arch = space.check(arch)
    b = ChainGraphEncoder(space, undirected).batch(torch.tensor([arch]))
    return Data(x=b.x, edge_index=b.edge_index)

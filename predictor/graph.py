"""Cell architecture -> graph encoding for the GNN predictor (ops on nodes): NB201's encoder.

`NB201Space.graph_encoder` builds the `GraphEncoder` below; any cell space with `edges` (to, from)
works the same way.

A cell with E edges becomes a graph of E + 2 nodes: node 0 is the cell input, nodes 1..E are the ops
in the space's edge order, node E + 1 is the cell output (always each graph's last node). Node
features are one-hot over `input, <ops...>, output`. Graph edges follow the data flow: the input feeds
every op on an edge leaving cell node 0; an op on an edge into cell node k feeds every op on an edge
leaving k (cell node k is the sum of those ops), and feeds the output when k is the last cell node.
For NB201 that is 8 nodes and 10 directed edges.

Every arch keeps all E op nodes (a `none` op is a node with the `none` one-hot), so node count and the
full edge list are the same for every arch. With `prune=True` (the default) an arch keeps only the
edges that lie on an input -> output path of non-`none` ops: a `none` op, or an op whose input is a
zero node, carries nothing, and a cell whose output is disconnected has an isolated output node. That
makes the ~10%-accuracy broken archs look alike to the GNN. The per-arch edge masks are precomputed
for the whole space once, so `GraphEncoder.batch` builds a batch of any size from an op-index tensor
without Python loops.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch_geometric.data import Batch, Data

from supernet.nb201_space import NB201Space
from supernet.space_base import Arch


def _cell_edges(space: NB201Space) -> tuple[tuple[int, int], ...]:
    return tuple(space.edges)


def num_node_features(space: NB201Space) -> int:
    """One-hot width: input, every op, output."""
    return len(space.ops) + 2


def full_edges(space: NB201Space) -> list[tuple[int, int]]:
    """The data-flow edges `(source node, target node)` of the op-on-node graph, before pruning."""
    cell = _cell_edges(space)
    last = max(to for to, _ in cell)
    out_node = len(cell) + 1
    edges = []
    for e, (_, src) in enumerate(cell):
        if src == 0:
            edges.append((0, e + 1))
        else:
            edges += [(f + 1, e + 1) for f, (to, _) in enumerate(cell) if to == src]
    edges += [(e + 1, out_node) for e, (to, _) in enumerate(cell) if to == last]
    return edges


def edge_mask(space: NB201Space, arch: Arch, prune: bool = True) -> list[bool]:
    """Which of `full_edges(space)` the arch keeps (all of them when `prune` is false)."""
    arch = space.check(arch)
    edges = full_edges(space)
    if not prune:
        return [True] * len(edges)
    none = space.ops.index("none") if "none" in space.ops else -1
    n = len(arch) + 2
    live = [True] + [a != none for a in arch] + [True]
    # forward: reachable from the input through live nodes; backward: reaches the output likewise
    fwd, bwd = {0}, {n - 1}
    for _ in range(n):
        fwd |= {t for s, t in edges if s in fwd and live[t]}
        bwd |= {s for s, t in edges if t in bwd and live[s]}
    return [s in fwd and t in fwd and s in bwd and t in bwd for s, t in edges]


def node_types(space: NB201Space, arch: Arch) -> list[int]:
    """Feature index of each node: 0 input, 1 + op index for op nodes, len(ops) + 1 output."""
    return [0] + [1 + a for a in space.check(arch)] + [len(space.ops) + 1]


def arch_to_graph(
    space: NB201Space,
    arch: Arch,
    features: Sequence[float] | torch.Tensor | None = None,
    prune: bool = True,
    undirected: bool = False,
) -> Data:
    """One arch as a PyG graph.

    Args:
        space: a cell search space (its `edges`).
        arch: op indices, one per cell edge.
        features: optional per-arch vector (already standardised), stored as `u`.
        prune: keep only edges on input -> output paths of non-`none` ops.
        undirected: also add every edge reversed.

    Shapes:
        x `(E + 2, len(ops) + 2)`, edge_index `(2, num_edges)`, u `(1, F)`.
    """
    types = torch.tensor(node_types(space, arch))
    x = torch.nn.functional.one_hot(types, num_node_features(space)).float()
    mask = edge_mask(space, arch, prune)
    kept = [e for e, m in zip(full_edges(space), mask) if m]
    edge_index = torch.tensor(kept, dtype=torch.long).reshape(-1, 2).t().contiguous()
    if undirected:
        edge_index = torch.cat([edge_index, edge_index.flip(0)], dim=1)
    data = Data(x=x, edge_index=edge_index, num_nodes=x.size(0))
    if features is not None:
        data.u = torch.as_tensor(features, dtype=torch.float).reshape(1, -1)
    return data


_MASKS: dict[tuple, torch.Tensor] = {}


def _all_masks(space: NB201Space, prune: bool) -> torch.Tensor:
    """`edge_mask` of every arch in index order, `(space.size, num_full_edges)` bool; cached per
    ops/edges/prune because the 15,625 NB201 masks take ~0.3 s to build in Python."""
    key = (space.ops, _cell_edges(space), prune)
    if key not in _MASKS:
        _MASKS[key] = torch.tensor([edge_mask(space, a, prune) for a in space.all_archs()])
    return _MASKS[key]


class GraphEncoder:
    """Builds PyG batches straight from op-index tensors, for every arch of a space at speed.

    Args:
        space: a cell search space.
        prune: as in `arch_to_graph`.
        undirected: as in `arch_to_graph`.
    """

    def __init__(self, space: NB201Space, prune: bool = True, undirected: bool = False) -> None:
        self.space, self.prune, self.undirected = space, prune, undirected
        self.num_nodes = space.num_decisions + 2
        self.in_channels = num_node_features(space)
        self.edges = torch.tensor(full_edges(space), dtype=torch.long).t()  # (2, num_full_edges)
        self.masks = _all_masks(space, prune)
        self._radix = len(space.ops) ** torch.arange(space.num_decisions - 1, -1, -1)

    def index(self, ops: torch.Tensor) -> torch.Tensor:
        """Canonical space indices of a `(B, num_decisions)` op-index tensor."""
        return (ops.long() * self._radix).sum(dim=1)

    def batch(self, ops: torch.Tensor, u: torch.Tensor | None = None) -> Batch:
        """A batch of `B` graphs equal to `Batch.from_data_list([arch_to_graph(...) ...])`
        (the same edges; in the same order unless `undirected`).

        Shapes:
            ops `(B, num_decisions)` long, u `(B, F)`; the batch's x `(B * num_nodes, in_channels)`.
        """
        ops = ops.long()
        B, n = ops.size(0), self.num_nodes
        types = torch.cat(
            [ops.new_zeros(B, 1), ops + 1, ops.new_full((B, 1), self.in_channels - 1)], dim=1
        )
        x = torch.nn.functional.one_hot(types.reshape(-1), self.in_channels).float()
        mask = self.masks[self.index(ops)]  # (B, num_full_edges)
        graph, edge = mask.nonzero(as_tuple=True)
        edge_index = self.edges[:, edge] + graph * n
        if self.undirected:  # edge order differs from from_data_list; GCN sums are order-free
            edge_index = torch.cat([edge_index, edge_index.flip(0)], dim=1)
        batch = torch.arange(B).repeat_interleave(n)
        ptr = torch.arange(B + 1) * n
        out = Batch(x=x, edge_index=edge_index, batch=batch, ptr=ptr)
        out._num_graphs = B
        if u is not None:
            out.u = u.float().reshape(B, -1)
        return out

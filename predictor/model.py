"""The GNN predictor: GCN layers over the op-on-node cell graph, a global pool, an MLP head."""

from __future__ import annotations

import torch
from torch import nn
from torch_geometric.nn import GCNConv, global_add_pool, global_mean_pool
from torch_geometric.nn.conv.gcn_conv import gcn_norm

POOLS = ("mean", "sum", "output", "output+mean")


class GCN(nn.Module):
    """GCN encoder + pooling + MLP head that also reads the per-arch vector `u` when given.

    Args:
        in_channels: node feature width (the one-hot width of `predictor.graph`).
        hidden_channels: width of every GCN layer and of the head.
        out_channels: outputs per graph.
        num_layers: GCN layers; 4 lets the input's message reach the output node in NB201.
        dropout: dropout after every hidden layer.
        pool: `mean` / `sum` over nodes, `output` (each graph's last node, the cell output), or
            `output+mean` (both, concatenated).
        u_channels: width of `u` (0: no per-arch features).
    """

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int = 64,
        out_channels: int = 1,
        num_layers: int = 4,
        dropout: float = 0.0,
        pool: str = "output",
        u_channels: int = 0,
    ) -> None:
        super().__init__()
        if pool not in POOLS:
            raise ValueError(f"pool={pool!r}; expected one of {POOLS}")
        if num_layers < 1:
            raise ValueError(f"num_layers={num_layers} must be at least 1")
        self.pool, self.dropout, self.u_channels = pool, dropout, u_channels
        # normalised once per forward and shared by the layers (GCNConv would redo it per layer;
        # on these 8-node graphs that bookkeeping is a tenth of a training step)
        self.convs = nn.ModuleList(
            GCNConv(in_channels if i == 0 else hidden_channels, hidden_channels, normalize=False)
            for i in range(num_layers)
        )
        pooled = hidden_channels * (2 if pool == "output+mean" else 1)
        self.head = nn.Sequential(
            nn.Linear(pooled + u_channels, hidden_channels),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden_channels, out_channels),
        )

    def forward(
        self,
        x: torch.Tensor,
        edge_index: torch.Tensor,
        batch: torch.Tensor,
        u: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Scores per graph.

        Shapes:
            x `(N, in_channels)`, edge_index `(2, E)`, batch `(N,)` sorted graph ids,
            u `(B, u_channels)` -> `(B, out_channels)`.
        """
        edge_index, edge_weight = gcn_norm(edge_index, None, x.size(0), add_self_loops=True)
        for conv in self.convs:
            x = torch.relu(conv(x, edge_index, edge_weight))
            x = nn.functional.dropout(x, self.dropout, self.training)
        num_graphs = int(batch[-1]) + 1 if batch.numel() else 0
        parts = []
        if self.pool.startswith("output"):
            last = torch.bincount(batch, minlength=num_graphs).cumsum(0) - 1
            parts.append(x[last])
        if self.pool in ("mean", "output+mean"):
            parts.append(global_mean_pool(x, batch, num_graphs))
        if self.pool == "sum":
            parts.append(global_add_pool(x, batch, num_graphs))
        if self.u_channels:
            if u is None:
                raise ValueError(f"model expects u of width {self.u_channels}; got none")
            parts.append(u)
        return self.head(torch.cat(parts, dim=1))

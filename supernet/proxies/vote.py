"""Rank-average vote of any subset of proxies: a table-level score, computed once all archs are in."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch


def average_ranks(values: torch.Tensor) -> torch.Tensor:
    """Ranks 1..N in ascending order of `values`, ties sharing their average rank (as scipy's rankdata).

    Shapes:
        values `(N,)` -> ranks `(N,)` float64, on the same device.
    """
    if values.ndim != 1:
        raise ValueError(f"average_ranks expects a 1-D tensor, got shape {tuple(values.shape)}")
    if torch.isnan(values).any():
        raise ValueError("average_ranks: scores contain NaN")
    sorted_vals, order = torch.sort(values, stable=True)
    _, counts = torch.unique_consecutive(sorted_vals, return_counts=True)
    ends = torch.cumsum(counts, 0).to(
        torch.float64
    )  # 1-based rank of each tie group's last member
    mean_rank = ends - (counts.to(torch.float64) - 1) / 2
    ranks = torch.empty(len(values), dtype=torch.float64, device=values.device)
    ranks[order] = torch.repeat_interleave(mean_rank, counts)
    return ranks


def rank_vote(
    columns: Mapping[str, Sequence[float] | torch.Tensor], names: Sequence[str] | None = None
) -> torch.Tensor:
    """Mean over the proxies `names` (default: all columns) of each arch's average rank; higher is better.

    Shapes:
        each column `(N,)` -> vote `(N,)` float64.
    """
    names = list(columns) if names is None else list(names)
    if not names:
        raise ValueError("rank_vote needs at least one proxy")
    missing = [n for n in names if n not in columns]
    if missing:
        raise ValueError(f"rank_vote: no column for {missing}; have {sorted(columns)}")
    cols = [torch.as_tensor(columns[n], dtype=torch.float64) for n in names]
    if len({len(c) for c in cols}) != 1:
        raise ValueError(f"rank_vote: columns {names} differ in length {[len(c) for c in cols]}")
    return torch.stack([average_ranks(c) for c in cols]).mean(dim=0)

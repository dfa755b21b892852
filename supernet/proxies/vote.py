"""Rank-average vote of any subset of proxies: a table-level score, computed once all archs are in."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from scipy.stats import rankdata


def average_ranks(values: torch.Tensor) -> torch.Tensor:
    """Ranks 1..N in ascending order of `values`, ties sharing their average rank:
    `scipy.stats.rankdata` on a tensor, refusing what a vote must not rank.

    Shapes:
        values `(N,)` -> ranks `(N,)` float64, on the same device.
    """
    if values.ndim != 1:
        raise ValueError(f"average_ranks expects a 1-D tensor, got shape {tuple(values.shape)}")
    if torch.isnan(values).any():
        raise ValueError("average_ranks: scores contain NaN")
    ranks = rankdata(values.detach().cpu().numpy(), method="average")
    return torch.from_numpy(ranks).to(device=values.device, dtype=torch.float64)


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

"""Few-shot NAS (Zhao et al., ICML 2021): the one-shot supernet split on one decision's op.

Training starts as one supernet. At the split (a fraction of the epochs), it is copied into one
sub-supernet per op of the split decision (an edge of NB201: 5 copies), weights and optimiser
momentum alike, and from then on each step's path trains only the copy its op on that decision
picks. Paths that differ there stop sharing any weight; paths that agree share them as before.
Evaluation routes an arch the same way, so one checkpoint holds the whole split supernet.

    nas-train supernet.net.split_edge=0 [supernet.split_at=0.5]

Uniform sampling gives each copy about 1/5 of the steps after the split: the same training time as
the one-shot supernet, not 5x as in the paper. On the CPU lab's protocol (NB201 C=8 N=1, CIFAR-10 at
16x16, 90 epochs, split on edge 0 at half, 3 seeds) the supernet ranked its own archs better by -loss
(0.571 against 0.527, and with a quarter of the spread) and the table's top-1 was better, but the
whole-space table fused with WRCor and MeCo ranked 0.003 lower, so it is an option, not a default
(BENCHMARKS.md, issue 15).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from supernet.space import Arch, SearchSpace


class FewShotSuperNet(nn.Module):
    """One supernet per op of decision `edge`, sharing nothing once split.

    Before `split()`, every arch runs on `parts[0]`; after it, on `parts[arch[edge]]`. Whether the
    split has happened is a buffer (`split_done`), so checkpoints and resumes keep it.

    Args:
        build: makes one supernet (every part is built alike; their weights are replaced at the
            split).
        space: the search space.
        edge: the decision to split on (0 to `space.num_decisions - 1`).
    """

    def __init__(self, build: Callable[[], nn.Module], space: SearchSpace, edge: int) -> None:
        super().__init__()
        if not 0 <= int(edge) < space.num_decisions:
            raise ValueError(
                f"split_edge={edge}: expected a decision of space {space.name} from 0 to "
                f"{space.num_decisions - 1}"
            )
        self.edge = int(edge)
        self.parts = nn.ModuleList(build() for _ in range(space.choices[self.edge]))
        self.register_buffer("split_done", torch.zeros((), dtype=torch.bool))

    # the names `SuperNet` gives checkpoints' meta, the stages and inherit_weights
    @property
    def space(self) -> SearchSpace:
        return self.parts[0].space

    @property
    def stem(self) -> nn.Module:
        return self.parts[0].stem

    @property
    def classifier(self) -> nn.Module:
        return self.parts[0].classifier

    @property
    def weights(self) -> Any:
        return getattr(self.parts[0], "weights", None)

    def part(self, arch: Arch) -> nn.Module:
        """The sub-supernet that runs `arch`."""
        return self.parts[arch[self.edge]] if bool(self.split_done) else self.parts[0]

    def forward(self, x: torch.Tensor, arch: Arch) -> torch.Tensor:
        return self.part(arch)(x, arch)

    @torch.no_grad()
    def split(self, optimizer: torch.optim.Optimizer | None = None) -> None:
        """Copies `parts[0]` into every other part, with the optimiser's per-parameter state
        (momentum) when given; a second call does nothing."""
        if bool(self.split_done):
            return
        source, state = list(self.parts[0].parameters()), self.parts[0].state_dict()
        for p in self.parts[1:]:
            p.load_state_dict(state)
            if optimizer is None:
                continue
            for src, dst in zip(source, p.parameters()):
                if src in optimizer.state:
                    optimizer.state[dst] = {
                        k: v.clone() if torch.is_tensor(v) else v
                        for k, v in optimizer.state[src].items()
                    }
        self.split_done.fill_(True)

"""A third search space needs only its own code and one registry line.

`ToySpace` (three layers, each a 3x3 conv, average pooling or zero, 27 archs) is defined here with its
supernet and graph encoder, registered in the test, and taken through what the project does with a
space: the registry, a Lightning training step and a checkpoint round trip, costs, enumeration,
sampling, the GCN predictor and the evolutionary search.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Iterator, Sequence

import pytest
import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from torch_geometric.data import Batch

import supernet.space as space_registry
from predictor.module import GCNPredictor
from predictor.search import EvolutionSearch
from supernet.model import build_supernet
from supernet.module import SupernetModule, load_supernet
from supernet.network import build_network
from supernet.sampler import Sampler
from supernet.space import Arch, Cost, SearchSpace, get_space, register_space


class ToySupernet(nn.Module):
    """Stem conv-BN, then per layer one of conv3x3 / avgpool / zero, pool, linear."""

    def __init__(
        self,
        space: ToySpace,
        num_classes: int,
        in_channels: int = 3,
        affine: bool = False,
        track_running_stats: bool = False,
    ) -> None:
        super().__init__()
        self.space, C = space, space.C
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, C, 3, padding=1, bias=False),
            nn.BatchNorm2d(C, affine=affine, track_running_stats=track_running_stats),
        )
        self.convs = nn.ModuleList(nn.Conv2d(C, C, 3, padding=1) for _ in range(space.layers))
        self.pool = nn.AvgPool2d(3, 1, 1)
        self.classifier = nn.Linear(C, num_classes)

    def forward(self, x: torch.Tensor, arch: Arch) -> torch.Tensor:
        h = self.stem(x)
        for conv, a in zip(self.convs, arch):
            op = self.space.ops[a]
            h = torch.relu(conv(h)) if op == "conv" else self.pool(h) if op == "pool" else h * 0
        return self.classifier(h.mean(dim=(2, 3)))


class ToyEncoder:
    """A path graph: input node, one node per layer (one-hot op), output node."""

    def __init__(self, space: ToySpace) -> None:
        self.num_nodes, self.in_channels = space.layers + 2, len(space.ops) + 2
        src = torch.arange(self.num_nodes - 1)
        self.edges = torch.cat([torch.stack([src, src + 1]), torch.stack([src + 1, src])], dim=1)

    def batch(self, ops: torch.Tensor, u: torch.Tensor | None = None) -> Batch:
        B, n = ops.size(0), self.num_nodes
        types = torch.cat(
            [ops.new_zeros(B, 1), ops.long() + 1, ops.new_full((B, 1), self.in_channels - 1)],
            dim=1,
        )
        x = nn.functional.one_hot(types.reshape(-1), self.in_channels).float()
        edge_index = (self.edges[:, None, :] + torch.arange(B)[None, :, None] * n).reshape(2, -1)
        out = Batch(x=x, edge_index=edge_index, batch=torch.arange(B).repeat_interleave(n))
        out.ptr, out._num_graphs = torch.arange(B + 1) * n, B
        return out


class ToySpace(SearchSpace):
    """`layers` layers of width `C`; an arch string is the ops joined by `-`."""

    name = "toy"
    ops = ("zero", "conv", "pool")

    def __init__(self, C: int = 4, layers: int = 3, max_enumerate: int = 1000) -> None:
        self.C, self.layers, self.max_enumerate = C, layers, max_enumerate

    @property
    def num_decisions(self) -> int:
        return self.layers

    def config(self) -> dict[str, int]:
        return {"C": self.C, "layers": self.layers}

    def parse(self, arch_str: str) -> Arch:
        try:
            return self.check([self.ops.index(op) for op in arch_str.split("-")])
        except ValueError as e:
            raise ValueError(f"toy: bad arch string {arch_str!r}: {e}") from None

    def to_str(self, arch: Arch) -> str:
        return "-".join(self.ops[a] for a in self.check(arch))

    def iso_key(self, arch: Arch) -> str:
        return self.to_str(arch)

    def cost(
        self, arch: Arch, input_shape: Sequence[int] = (3, 32, 32), num_classes: int = 10
    ) -> Cost:
        c, h, w = input_shape
        convs = sum(self.ops[a] == "conv" for a in self.check(arch))
        params = c * self.C * 9 + convs * (self.C * self.C * 9 + self.C) + self.C * num_classes
        return Cost(flops_M=params * h * w / 1e6, params_M=params / 1e6)

    def supernet_class(self) -> type[nn.Module]:
        return ToySupernet

    def graph_encoder(self, prune: bool = True, undirected: bool = False) -> ToyEncoder:
        return ToyEncoder(self)


@pytest.fixture(autouse=True)
def registered(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(space_registry, "SPACES", dict(space_registry.SPACES))  # undone after
    register_space(ToySpace)  # the one registry line a new space needs
    yield


def test_registry_builds_it_by_name_and_refuses_a_taken_name() -> None:
    space = get_space("toy", C=2, layers=2)
    assert isinstance(space, ToySpace) and space.config() == {"C": 2, "layers": 2}
    register_space(ToySpace)  # the same class again is harmless
    clash = type("Clash", (ToySpace,), {"name": "nb201"})
    with pytest.raises(ValueError, match="'nb201' is taken by NB201Space"):
        register_space(clash)


def test_archs_enumeration_sampling_and_costs() -> None:
    space = ToySpace()
    archs = list(space.all_archs())
    assert space.enumerable and space.size == len(archs) == 27
    assert [space.index(a) for a in archs] == list(range(27))
    assert all(space.from_index(space.index(a)) == a for a in archs)
    assert space.parse(space.to_str((1, 2, 0))) == (1, 2, 0)
    assert space.sample(random.Random(0)) in archs
    assert space.cost((1, 1, 1)).params_M > space.cost((0, 2, 0)).params_M
    small = ToySpace(max_enumerate=10)
    assert not small.enumerable
    with pytest.raises(ValueError, match="too many to enumerate"):
        small.all_archs()
    with pytest.raises(ValueError, match="no standalone network for space 'toy'"):
        build_network(space, (1, 1, 1), 3)
    assert not space.has_latency_table


def test_supernet_trains_a_step_and_its_checkpoint_round_trips(tmp_path) -> None:
    torch.manual_seed(0)
    space = ToySpace()
    net = build_supernet(space, num_classes=3, in_channels=1, share_convs=True)  # no such layout
    opt = functools.partial(torch.optim.SGD, lr=0.1)
    module = SupernetModule(net, Sampler(space, seed=0), opt)
    assert module.reference_archs == space.default_reference_archs()  # 4 seeded samples
    data = TensorDataset(torch.randn(8, 1, 6, 6), torch.randint(0, 3, (8,)))
    trainer = pl.Trainer(
        max_epochs=1,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    before = [p.detach().clone() for p in net.parameters()]
    trainer.fit(module, DataLoader(data, batch_size=4), DataLoader(data, batch_size=8))
    assert any(not torch.equal(b, p) for b, p in zip(before, net.parameters()))
    trainer.save_checkpoint(tmp_path / "last.ckpt")
    loaded, record = load_supernet(tmp_path / "last.ckpt")
    assert isinstance(loaded, ToySupernet) and record["meta"]["space"] == "toy"
    x, arch = torch.randn(2, 1, 6, 6), (1, 2, 1)
    assert torch.allclose(loaded(x, arch), net.eval()(x, arch))


def test_predictor_fits_its_graphs_and_the_search_runs() -> None:
    space = ToySpace()
    archs = torch.tensor(list(space.all_archs()))
    y = torch.tensor([space.cost(tuple(a)).params_M for a in archs.tolist()])
    pred = GCNPredictor(space, hidden_channels=8, num_layers=2, epochs=5, ensemble=1)
    assert pred.hparams["pool"] == space.graph_pool
    pred.fit(archs, y)
    assert pred.predict(archs).shape == (27,)
    search = EvolutionSearch(
        space,
        lambda batch: pred.predict(torch.tensor(batch)).tolist(),
        population_size=6,
        parents=2,
        max_params_M=space.cost((1, 1, 0)).params_M,
    )
    best = search.run(generations=2)  # every arch scored, best first: none over the budget
    assert best and all(sum(space.ops[a] == "conv" for a in arch) <= 2 for arch, _ in best)
    assert [score for _, score in best] == sorted((score for _, score in best), reverse=True)

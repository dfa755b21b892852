"""GCN model shapes, ranking loss, fit determinism, ridge baseline, state round trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from predictor.graph import GraphEncoder
from predictor.model import GCN, POOLS
from predictor.module import (
    GCNPredictor,
    RidgePredictor,
    pairwise_rank_loss,
    predictor_from_state,
)
from predictor.table import rank_standardise
from supernet.space import NB201Space

SPACE = NB201Space()
TINY = dict(hidden_channels=8, num_layers=2, epochs=4, batch_size=16, ensemble=2, patience=2)


def _data(n: int = 40, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    ops = torch.randint(0, 5, (n, 6), generator=torch.Generator().manual_seed(seed))
    y = 80 + 2.0 * (ops == 3).sum(1).float() - 5.0 * (ops == 0).sum(1).float()
    return ops, y


@pytest.mark.parametrize("pool", POOLS)
def test_model_output_shapes(pool: str) -> None:
    enc = GraphEncoder(SPACE)
    b = enc.batch(torch.randint(0, 5, (7, 6)), torch.randn(7, 3))
    out = GCN(enc.in_channels, 16, 2, num_layers=3, pool=pool, u_channels=3)(
        b.x, b.edge_index, b.batch, b.u
    )
    assert out.shape == (7, 2)
    with pytest.raises(ValueError, match="u of width 3"):
        GCN(enc.in_channels, 16, u_channels=3)(b.x, b.edge_index, b.batch)


def test_output_pool_reads_each_graphs_last_node() -> None:
    enc = GraphEncoder(SPACE)
    model = GCN(enc.in_channels, 8, pool="output").eval()
    ops = torch.randint(0, 5, (5, 6), generator=torch.Generator().manual_seed(1))
    b = enc.batch(ops)
    together = model(b.x, b.edge_index, b.batch)
    alone = torch.cat(
        [model(g.x, g.edge_index, g.batch) for g in (enc.batch(o[None]) for o in ops)]
    )
    assert torch.allclose(together, alone, atol=1e-6)


def test_rank_loss_prefers_the_right_order() -> None:
    y = torch.tensor([1.0, 2.0, 3.0])
    assert pairwise_rank_loss(y, y) < pairwise_rank_loss(-y, y)
    assert float(pairwise_rank_loss(torch.zeros(3), torch.ones(3))) == 0.0  # no ordered pair


def test_fit_is_deterministic_for_a_seed() -> None:
    ops, y = _data()
    preds = []
    for seed in (0, 0, 1):
        p = GCNPredictor(SPACE, seed=seed, **TINY)
        p.fit(ops, y)
        preds.append(p.predict(ops))
    assert torch.equal(preds[0], preds[1])
    assert not torch.equal(preds[0], preds[2])
    assert torch.get_num_threads() >= 1  # restored after fitting


@pytest.mark.parametrize("loss", ["mse", "rank", "both"])
def test_fit_learns_the_order_and_round_trips(loss: str) -> None:
    ops, y = _data(120)
    p = GCNPredictor(
        SPACE, loss=loss, **{**TINY, "epochs": 40, "hidden_channels": 16, "patience": 40}
    )
    p.fit(ops, y, torch.ones(120, 1))
    pred = p.predict(ops, torch.ones(120, 1))
    assert pred.shape == (120,)
    assert np.corrcoef(pred.numpy(), y.numpy())[0, 1] > 0.5
    again = predictor_from_state(SPACE, p.state_dict())
    assert torch.equal(again.predict(ops, torch.ones(120, 1)), pred)
    with pytest.raises(ValueError, match="u-features"):
        p.predict(ops)


def test_ridge_recovers_a_linear_function() -> None:
    ops, y = _data(200)
    r = RidgePredictor(SPACE, alpha=1e-6)
    r.fit(ops, y)
    assert torch.allclose(r.predict(ops), y, atol=1e-3)
    assert torch.allclose(predictor_from_state(SPACE, r.state_dict()).predict(ops), y, atol=1e-3)


def test_rank_standardise() -> None:
    x = np.array([[1.0, 5.0], [1000.0, 5.0], [2.0, 5.0]])
    z = rank_standardise(x)
    assert np.allclose(z[:, 0].mean(), 0) and np.allclose(z[:, 0].std(), 1)
    assert z[1, 0] > z[2, 0] > z[0, 0] and (z[:, 1] == 0).all()


def test_bad_options_raise() -> None:
    with pytest.raises(ValueError, match="loss"):
        GCNPredictor(SPACE, loss="hinge")
    with pytest.raises(ValueError, match="pool"):
        GCN(7, pool="max")

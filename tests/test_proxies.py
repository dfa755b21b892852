"""Zero-shot proxies on a tiny NB201 network (C=4, N=1) and a few random 8x8 images."""

from __future__ import annotations

import gc
import math
import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.stats import rankdata
from torch import nn

from supernet.proxies import (
    PROXIES,
    ProxyContext,
    ReLURecorder,
    abs_corr_sum,
    average_ranks,
    build_scoring_net,
    common,
    fixed_batch,
    get_proxy,
    rank_vote,
    register_proxy,
    score_archs,
    wrcor,
    wrcor_matrix,
)
from supernet.proxies.common import RIDGE, recorder_for
from supernet.space import NB201Space

SPACE = NB201Space(C=4, N=1)
ARCHS = {
    "mixed": "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|nor_conv_3x3~0|skip_connect~1|nor_conv_3x3~2|",
    # node 1 dead: node 2 is a conv of zeros (constant responses), node 3 still gets node 0
    "dead_node": "|none~0|+|none~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_1x1~1|nor_conv_3x3~2|",
    # node 1's conv output is used by nothing: its response has no gradient
    "unused_op": "|nor_conv_3x3~0|+|skip_connect~0|none~1|+|skip_connect~0|none~1|nor_conv_3x3~2|",
    "all_conv": "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|",
    "dead_net": "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
}


def batch(B: int = 16, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, 3, 8, 8, generator=g), torch.randint(0, 10, (B,), generator=g)


def context() -> ProxyContext:
    return ProxyContext(SPACE, (3, 8, 8), 10)


def reference_wrcor(net: nn.Module, arch, x, y) -> tuple[np.ndarray, float]:
    """Slow and direct: module hooks, numpy corrcoef, an explicit weighted sum, numpy slogdet."""
    level = net.block_index()
    acts: dict[nn.Module, np.ndarray] = {}
    grads: dict[nn.Module, np.ndarray] = {}
    handles = []
    for m in level:
        handles.append(
            m.register_forward_hook(
                lambda mod, inp, out: acts.__setitem__(mod, inp[0].detach().double().numpy())
            )
        )
        handles.append(
            m.register_full_backward_hook(
                lambda mod, gin, gout: grads.__setitem__(mod, gin[0].double().numpy())
            )
        )
    net.zero_grad()
    F.cross_entropy(net(x, arch), y).backward()
    for h in handles:
        h.remove()
    B = x.shape[0]

    def abs_corr(a: np.ndarray) -> np.ndarray:
        a = a.reshape(B, -1)
        flat = np.array([np.ptp(r) == 0 for r in a])
        with np.errstate(invalid="ignore", divide="ignore"):
            c = np.abs(np.corrcoef(a))
        c[flat, :] = 0.0
        c[:, flat] = 0.0
        c[np.ix_(flat, flat)] = 1.0  # documented: constant rows correlate 1 with each other
        np.fill_diagonal(c, 1.0)
        assert not np.isnan(c).any()
        return c

    K = np.zeros((B, B))
    for m, a in acts.items():
        g = grads.get(m, np.zeros_like(a))  # no backward through this ReLU: zero gradient
        K += 2.0 ** level[m] * (abs_corr(a) + abs_corr(g))
    sign, logdet = np.linalg.slogdet(K)
    if sign <= 0:
        sign, logdet = np.linalg.slogdet(K + RIDGE * np.mean(np.diag(K)) * np.eye(B))
    return K, float(logdet)


@pytest.mark.parametrize("name", list(ARCHS))
def test_wrcor_matches_direct_computation(name: str) -> None:
    arch = SPACE.parse(ARCHS[name])
    x, y = batch()
    net = build_scoring_net(SPACE, 10, 3, seed=0, device="cpu")
    K_ref, score_ref = reference_wrcor(net, arch, x, y)
    ctx = context()
    K = wrcor_matrix(net, arch, x, y, ctx).numpy()
    np.testing.assert_allclose(K, K_ref, rtol=1e-5, atol=1e-4 * K_ref.max())
    score = float(get_proxy("wrcor")(net, arch, x, y, ctx))
    assert score == pytest.approx(score_ref, abs=1e-3)
    assert int(ctx.counters["wrcor/ridge"]) == (name == "dead_net")


def test_wrcor_weights_follow_block_position() -> None:
    """diag K = sum over fired ReLUs of 2 x 2^l: cells at l = 0, 2, 4 (6 convs each on `all_conv`),
    reductions at l = 1, 3 (2 ReLUs each), the head at l = num_blocks = 5."""
    x, y = batch()
    net = build_scoring_net(SPACE, 10, 3, seed=0, device="cpu")
    K = wrcor_matrix(net, SPACE.parse(ARCHS["all_conv"]), x, y, context())
    expected = 2 * (6 * (2**0 + 2**2 + 2**4) + 2 * (2**1 + 2**3) + 2**SPACE.num_blocks)
    assert torch.equal(K.diagonal(), torch.full((16,), float(expected), dtype=torch.float64))


def test_naswot_matches_hamming_kernel() -> None:
    arch = SPACE.parse(ARCHS["mixed"])
    x, y = batch()
    net = build_scoring_net(SPACE, 10, 3, seed=0, device="cpu")
    codes = []
    hs = [
        m.register_forward_hook(lambda m, i, o: codes.append((i[0] > 0).reshape(16, -1)))
        for m in net.block_index()
    ]
    with torch.no_grad():
        net(x, arch)
    for h in hs:
        h.remove()
    c = torch.cat(codes, 1).double()
    hamming = (c[:, None, :] != c[None, :, :]).sum(-1).double()
    ref = torch.linalg.slogdet(c.shape[1] - hamming)[1].item()
    assert float(get_proxy("naswot")(net, arch, x, y, context())) == pytest.approx(ref, abs=1e-6)


def test_scores_finite_and_dead_net_ranks_last() -> None:
    x, y = batch()
    net = build_scoring_net(SPACE, 10, 3, seed=0, device="cpu")
    archs = [SPACE.parse(s) for s in ARCHS.values()]
    rows = [
        r
        for chunk in score_archs(net, archs, x, y, list(PROXIES), context(), chunk=2)
        for r in chunk
    ]
    assert len(rows) == len(archs)
    for _, s in rows:
        assert all(math.isfinite(v) for v in s.values()), s
    wr = {SPACE.to_str(a): s["wrcor"] for a, s in rows}
    assert min(wr, key=wr.get) == ARCHS["dead_net"]


def test_deterministic_and_order_independent() -> None:
    x, y = batch()
    g = torch.Generator().manual_seed(1)
    archs = [SPACE.from_index(i) for i in torch.randperm(SPACE.size, generator=g)[:4].tolist()]

    def scores(seed: int, order: list, names: tuple = ("wrcor", "naswot", "synflow")) -> dict:
        net = build_scoring_net(SPACE, 10, 3, seed=seed, device="cpu")
        return {
            a: s for chunk in score_archs(net, order, x, y, names, context()) for a, s in chunk
        }

    first = scores(0, archs)
    assert scores(0, archs[::-1]) == first  # bitwise: nothing an arch does reaches the next
    assert scores(0, archs) == first
    other = scores(1, archs, ("wrcor",))
    assert all(other[a]["wrcor"] != first[a]["wrcor"] for a in archs)


def test_a_net_with_a_dead_nets_id_gets_its_own_helpers(monkeypatch) -> None:
    """One context, one fresh net per arch (the speed benchmark's baseline): CPython may give a net
    the id() of one freed before, which keyed the recorder and SynFlow's copy until that net's
    recorder (hooks on dead ReLUs) recorded nothing: IndexError in abs_corr_sum, seen once in a
    test run (MeCo's maps: a silent 0). Here every id() collides; each net is scored as itself."""
    monkeypatch.setattr(common, "id", lambda obj: 0, raising=False)
    x, y = batch()
    arch = SPACE.parse(ARCHS["mixed"])
    shared = context()
    for seed in range(3):
        net = build_scoring_net(SPACE, 10, 3, seed=seed, device="cpu")
        for name in ("wrcor", "naswot", "synflow", "meco"):
            alone = get_proxy(name)(net, arch, x, y, context()).item()
            assert get_proxy(name)(net, arch, x, y, shared).item() == alone, (seed, name)
        del net


def test_per_net_helpers_leave_with_their_net() -> None:
    ctx = context()
    net = build_scoring_net(SPACE, 10, 3, seed=0, device="cpu")
    rec = recorder_for(net, ctx.cache)
    assert recorder_for(net, ctx.cache) is rec
    assert len(ctx.cache["relu_recorder"]) == 1
    del net, rec
    gc.collect()
    assert len(ctx.cache["relu_recorder"]) == 0


def test_no_response_is_a_clear_error(monkeypatch) -> None:
    """No response has no (B, B) matrix; a recorder off the net that ran is named as the cause."""
    with pytest.raises(ValueError, match="at least one response"):
        abs_corr_sum([], [])
    x, y = batch()
    net = build_scoring_net(SPACE, 10, 3, seed=0, device="cpu")
    other = ReLURecorder(build_scoring_net(SPACE, 10, 3, seed=1, device="cpu"))
    monkeypatch.setattr(wrcor, "recorder_for", lambda net, cache: other)
    with pytest.raises(RuntimeError, match="no ReLU response"):
        wrcor_matrix(net, SPACE.parse(ARCHS["mixed"]), x, y, context())


def test_registry_rejects_duplicates_and_unknown_names() -> None:
    with pytest.raises(ValueError, match="wrcor"):
        register_proxy("wrcor")(lambda net, arch, x, y, ctx: 0.0)
    with pytest.raises(ValueError, match="unknown proxy 'nope'"):
        get_proxy("nope")
    assert {"wrcor", "naswot", "synflow", "params", "flops"} <= set(PROXIES)


def test_vote_is_mean_of_average_ranks() -> None:
    a = [3.0, 1.0, 2.0, 2.0]
    b = [10.0, 40.0, 30.0, 20.0]
    np.testing.assert_array_equal(average_ranks(torch.tensor(a)).numpy(), rankdata(a))
    v = rank_vote({"a": a, "b": b, "c": [0.0] * 4}, ["a", "b"])
    np.testing.assert_allclose(v.numpy(), [(4 + 1) / 2, (1 + 4) / 2, (2.5 + 3) / 2, (2.5 + 2) / 2])
    with pytest.raises(ValueError, match="NaN"):
        rank_vote({"a": [1.0, float("nan")]})
    with pytest.raises(ValueError, match="no column"):
        rank_vote({"a": a}, ["a", "zz"])


def test_fixed_batch_is_seeded() -> None:
    xs = torch.randint(0, 256, (50, 1, 8, 8), dtype=torch.uint8)
    ys = torch.arange(50) % 10
    m, s = torch.tensor([100.0]), torch.tensor([50.0])
    x0, y0 = fixed_batch(xs, ys, m, s, 8, seed=3, device="cpu")
    x1, y1 = fixed_batch(xs, ys, m, s, 8, seed=3, device="cpu")
    assert torch.equal(x0, x1) and torch.equal(y0, y1) and x0.shape == (8, 1, 8, 8)
    assert not torch.equal(fixed_batch(xs, ys, m, s, 8, seed=4, device="cpu")[1], y0)
    with pytest.raises(ValueError, match="batch_size=51"):
        fixed_batch(xs, ys, m, s, 51, seed=0, device="cpu")


def test_wrcor_under_bf16_keeps_the_fp32_ranking() -> None:
    """`ProxyContext(bf16=True)` runs WRCor's passes under bf16 autocast: the ranking of 40 archs
    stays that of the fp32 definition (issue 16 asks Spearman >= 0.99)."""
    from scipy.stats import spearmanr

    net = build_scoring_net(SPACE, 10, 3, 0, "cpu")
    x, y = batch(32)
    rng = random.Random(0)
    archs = [SPACE.sample(rng) for _ in range(40)]
    fp32, bf16 = context(), ProxyContext(SPACE, (3, 8, 8), 10, bf16=True)
    exact = [float(get_proxy("wrcor")(net, a, x, y, fp32)) for a in archs]
    fast = [float(get_proxy("wrcor")(net, a, x, y, bf16)) for a in archs]
    assert spearmanr(exact, fast)[0] >= 0.99
    assert exact != fast  # autocast took effect

"""MeCo: the sum over feature maps of the smallest eigenvalue of an image's channel correlations,
averaged over the batch's first images."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from supernet.proxies import ProxyContext, build_scoring_net, get_proxy, score_archs
from supernet.proxies.meco import MECO_IMAGES, min_eig_sum
from supernet.space import NB201Space

SPACE = NB201Space(C=4, N=1)
ARCHS = [
    "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|nor_conv_3x3~0|skip_connect~1|nor_conv_3x3~2|",
    "|none~0|+|none~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_1x1~1|nor_conv_3x3~2|",
    "|avg_pool_3x3~0|+|skip_connect~0|avg_pool_3x3~1|+|none~0|avg_pool_3x3~1|skip_connect~2|",
]


def images(B: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(B, 3, 8, 8, generator=torch.Generator().manual_seed(seed))


def reference_meco(net: nn.Module, arch, x: torch.Tensor) -> float:
    """Slow and direct: a hook on every module, numpy's corrcoef of each image's channels (NaN of
    a constant channel -> 0), numpy's eigenvalues, a plain sum per image, then the images' mean."""
    total = []

    def hook(module, inputs, output):
        if isinstance(output, torch.Tensor) and output.dim() == 4:
            for image in output.detach().double():
                f = image.reshape(output.shape[1], -1).numpy()
                with np.errstate(invalid="ignore", divide="ignore"):
                    c = np.nan_to_num(np.corrcoef(f), nan=0.0)
                total.append(np.linalg.eigvalsh(c).min())

    handles = [m.register_forward_hook(hook) for m in net.modules()]
    try:
        with torch.no_grad():
            net(x, arch)
    finally:
        for h in handles:
            h.remove()
    return float(sum(total)) / len(x)


def test_meco_matches_the_direct_computation() -> None:
    x = images(MECO_IMAGES)
    y = torch.zeros(MECO_IMAGES, dtype=torch.long)
    for s in ARCHS:
        arch = SPACE.parse(s)
        net = build_scoring_net(SPACE, 10, 3, seed=0, device="cpu")
        want = reference_meco(net, arch, x)
        got = float(get_proxy("meco")(net, arch, x, y, ProxyContext(SPACE, (3, 8, 8), 10)))
        assert abs(got - want) < 1e-6 * max(1.0, abs(want)), (s, got, want)  # float32 Gram


def test_meco_reads_only_the_first_images_of_the_batch() -> None:
    # the rest of the batch is not used: a longer batch with the same first images scores the same
    net = build_scoring_net(SPACE, 10, 3, seed=0, device="cpu")
    archs = [SPACE.parse(s) for s in ARCHS]
    short = images(MECO_IMAGES)
    long = torch.cat([short, images(24, seed=1)])

    def scores(x):
        y = torch.zeros(len(x), dtype=torch.long)
        ctx = ProxyContext(SPACE, (3, 8, 8), 10)
        return [
            s["meco"] for chunk in score_archs(net, archs, x, y, ["meco"], ctx) for _, s in chunk
        ]

    assert scores(short) == scores(long)
    assert len(set(scores(short))) == len(archs)  # and it tells these archs apart


def test_min_eig_sum_of_known_correlations() -> None:
    g = torch.Generator().manual_seed(0)
    a = torch.randn(400, 4, generator=g, dtype=torch.float64)
    # 4 uncorrelated channels (orthonormal combinations of centred columns): eigenvalues all 1
    white = torch.linalg.qr(a - a.mean(0))[0].T
    twins = torch.cat([white[:2], white[:2]])  # two channels repeated: singular, min eig 0
    constant = torch.cat([white[:3], torch.ones(1, 400, dtype=torch.float64)])  # a zero row
    assert abs(float(min_eig_sum([white])) - 1.0) < 1e-6
    assert abs(float(min_eig_sum([twins]))) < 1e-6
    assert abs(float(min_eig_sum([constant]))) < 1e-6  # its row and column are 0: eigenvalue 0
    assert abs(float(min_eig_sum([white, twins, white])) - 2.0) < 1e-6
    assert abs(float(min_eig_sum([white, twins], [3, 2])) - 3.0) < 1e-6  # a map counted 3 times
    # no more positions than channels: rank-deficient once centred, skipped as exactly 0
    few = torch.randn(4, 4, generator=g, dtype=torch.float64)
    assert float(min_eig_sum([few])) == 0.0
    assert float(min_eig_sum([white, few])) == float(min_eig_sum([white]))
    c = few - few.mean(1, keepdim=True)
    assert abs(float(np.linalg.eigvalsh(np.corrcoef(c.numpy())).min())) < 1e-9  # as it should be


def test_a_tensor_returned_by_several_modules_is_one_map_counted_each_time() -> None:
    """A `Sequential` returns its last child's output, an `Identity` its input: the definition
    counts every module call, so the map is decomposed once and counted as often as returned."""
    from supernet.proxies.meco import FeatureMaps

    net = build_scoring_net(SPACE, 10, 3, seed=0, device="cpu")
    fm = FeatureMaps(net)
    calls = []
    handles = [
        m.register_forward_hook(
            lambda m, i, o: (
                calls.append(o) if isinstance(o, torch.Tensor) and o.dim() == 4 else None
            )
        )
        for m in net.modules()
    ]
    fm.start()
    with torch.no_grad():
        net(images(MECO_IMAGES), SPACE.parse(ARCHS[0]))
    fm.active = False
    for h in handles:
        h.remove()
    assert sum(fm.counts) == len(calls) > len(fm.maps)  # repeats exist and are all counted
    assert len(fm.maps) == len({id(o) for o in calls})

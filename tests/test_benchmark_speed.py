import json
import math
import statistics

import pytest
import torch
from hydra.utils import instantiate
from torch import nn

from predictor.benchmarks.speed import baseline_net, run
from supernet.model import SuperNet
from supernet.ops import AvgPool3x3
from tests.conftest import make_cfg


def test_speed_benchmark_runs_tiny_and_reports_every_stage(tmp_path):
    """Runs the benchmark's code paths; CI times nothing, so only the report's shape is checked."""
    result = run(make_cfg("benchmark_speed", tmp_path, ["device=cpu"]))
    saved = json.loads((tmp_path / "benchmark_speed.json").read_text())
    assert saved["device"] == "cpu" and saved["space"] == {"C": 4, "N": 1}
    for stage, keys in {
        "train": ("baseline_img_s", "ours_img_s"),
        "eval": ("baseline_ms_per_subnet", "ours_ms_per_subnet"),
        "wrcor": ("baseline_ms_per_arch", "ours_ms_per_arch"),
    }.items():
        for key in keys:
            assert math.isfinite(result[stage][key]) and result[stage][key] > 0
    assert saved["floor_train_img_s"] > 0


def test_ab_mode_times_every_option_on_and_off_and_reports_where(tmp_path):
    """mode=ab on the tiny space: every option (pooling at the three stage sizes) gets `rounds`
    timed calls per variant, medians and their ratio, in JSON and Markdown with the run's record."""
    rounds = 2
    cfg = make_cfg(
        "benchmark_speed",
        tmp_path,
        [
            "device=cpu",
            "mode=ab",
            f"ab.rounds={rounds}",
            "ab.batch_size=8",
            "ab.pool_calls=1",
            "ab.train_steps=1",
            "ab.eval_subnets=1",
            "ab.eval_images=32",
            "ab.wrcor_archs=2",
        ],
    )
    run(cfg)
    saved = json.loads((tmp_path / "benchmark_speed.json").read_text())
    assert saved["mode"] == "ab" and saved["device"] == "cpu"
    assert saved["git"] and saved["date"] and "command" in saved
    names = {"pool_4x16x16", "pool_8x8x8", "pool_16x4x4", "wrcor_bf16"}
    names |= {f"{s}_{o}" for s in ("eval", "train") for o in ("bf16", "channels_last")}
    assert set(saved["ab"]) == names
    for r in saved["ab"].values():
        assert len(r["on_calls_ms"]) == len(r["off_calls_ms"]) == rounds
        assert r["on_ms"] == pytest.approx(statistics.median(r["on_calls_ms"])) and r["on_ms"] > 0
        assert r["off_ms"] == pytest.approx(statistics.median(r["off_calls_ms"]))
        assert r["speedup"] == pytest.approx(r["off_ms"] / r["on_ms"])
        # every round slower by at least the min ratio => so are the medians (same for the max)
        low, high = r["round_speedup_min"], r["round_speedup_max"]
        assert low * (1 - 1e-9) <= r["speedup"] <= high * (1 + 1e-9)
    assert saved["ab"]["pool_8x8x8"]["call"] == "1 forward+backward of (8, 8, 8, 8)"
    md = (tmp_path / "benchmark_speed.md").read_text()
    assert saved["git"] in md and "| pool_16x4x4 | AvgPool3x3" in md
    assert len([line for line in md.splitlines() if line.startswith("| ")]) == 1 + len(names)


def test_ab_mode_refuses_an_unknown_option(tmp_path):
    cfg = make_cfg(
        "benchmark_speed", tmp_path, ["device=cpu", "mode=ab", "ab.options=[pool,fast]"]
    )
    with pytest.raises(ValueError, match="fast"):
        run(cfg)


def test_compile_ops_compiles_each_cell_op_once_and_keeps_the_outputs():
    """The compile option (`ab.options=[eval_compile,train_compile]`) compiles the modules that
    compute a cell's ops: shared convs once, never the slices that call them; a path's output is
    unchanged. Dynamo's `eager` backend stands in for inductor, so nothing is built here."""
    import torch

    from predictor.benchmarks.speed import compile_ops
    from supernet.model import SuperNet
    from supernet.ops import SharedConvs
    from supernet.space import NB201Space

    space = NB201Space(C=4, N=1)
    torch.manual_seed(0)
    net = SuperNet(space, 10, 3, share_convs=True).eval()
    arch = (3, 2, 4, 3, 1, 2)  # every op kind but none, on a live path
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        before = net(x, arch)
    n = compile_ops(net, backend="eager")
    # 3 cells x 6 edges: one SharedConvs, skip, pooling and none per edge (the 2 slices not counted)
    assert n == 3 * 6 * 4
    assert sum(isinstance(m, SharedConvs) for m in net.modules()) == 18
    with torch.no_grad():
        assert torch.allclose(net(x, arch), before, atol=1e-6)


def test_eager_baseline_pools_with_torch_and_computes_the_same_net(tmp_path):
    """The baselines are a plain implementation: torch's `nn.AvgPool2d` in every pooling edge
    (`bench.baseline_pool=torch`, the default); with the same weights the project's net gives the
    same logits, so the timed comparison is of the same function."""
    cfg = make_cfg("benchmark_speed", tmp_path, ["device=cpu"])
    space = instantiate(cfg.space)
    torch.manual_seed(0)
    plain = baseline_net(cfg, space, torch.device("cpu")).eval()
    assert not any(isinstance(m, AvgPool3x3) for m in plain.modules())
    assert any(isinstance(m, nn.AvgPool2d) for m in plain.modules())
    ours = SuperNet(space, cfg.bench.num_classes, cfg.bench.image_shape[0]).eval()
    ours.load_state_dict(plain.state_dict())
    pool = space.ops.index("avg_pool_3x3")
    arch = (pool,) * space.num_decisions
    x = torch.randn(4, *cfg.bench.image_shape)
    with torch.no_grad():
        torch.testing.assert_close(plain(x, arch), ours(x, arch), atol=1e-5, rtol=1e-5)
    cfg.bench.baseline_pool = "numpy"
    with pytest.raises(ValueError, match="baseline_pool='numpy'; expected torch or project"):
        baseline_net(cfg, space, torch.device("cpu"))

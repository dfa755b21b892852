import csv
import math

import pytest
import torch

from predictor.stages import fit, query
from supernet.chain_model import ChainSuperNet
from supernet.chain_space import ChainSpace
from supernet.latency import LatencyTable, measure_network, measure_table, median_ms, wall_times
from supernet.stages import latency as latency_script
from tests.conftest import make_cfg

TINY = dict(widths=[8, 16], layers=[2, 2], strides=[1, 2], stem_channels=8, head_channels=32)


def hand_table(space: ChainSpace) -> LatencyTable:
    """1 ms fixed; an op costs its kernel size in ms, skip nothing."""
    ops = [{op: (0.0 if op == "skip" else float(op[4])) for op in space.ops} for _ in space.chain]
    return LatencyTable("chain", "hand", 1, [1, 8, 8], 1.0, ops)


def test_table_sums_and_round_trips(tmp_path):
    space = ChainSpace(**TINY)
    table = hand_table(space)
    assert table.latency_ms(["ir_k3_e3", "skip", "ir_k7_e6", "ir_k5_e3"]) == 1 + 3 + 0 + 7 + 5
    with pytest.raises(ValueError, match="3 layers"):
        table.latency_ms(["ir_k3_e3", "skip", "ir_k7_e6"])
    assert LatencyTable.load(table.save(tmp_path / "t.json")) == table
    with pytest.raises(FileNotFoundError, match="nope.json"):
        LatencyTable.load(tmp_path / "nope.json")


def test_calibration_fits_the_factor_from_raw_sums_to_measured(tmp_path):
    space = ChainSpace(**TINY)
    table = hand_table(space)
    archs = [["ir_k3_e3", "skip", "ir_k7_e6", "ir_k5_e3"], ["ir_k7_e3"] * 4, ["ir_k3_e6"] * 4]
    raw = [table.latency_ms(a) for a in archs]  # 16, 29, 13
    table.calibrate(archs, [1.25 * r for r in raw])  # whole networks: 25% slower
    assert table.scale == pytest.approx(1.25)
    assert table.latency_ms(archs[0]) == pytest.approx(20)
    assert table.latency_ms(archs[0], calibrated=False) == 16
    assert LatencyTable.load(table.save(tmp_path / "t.json")) == table
    table.calibrate(archs[:2], [17.0, 31.0])  # least squares: (16*17 + 29*31) / (16^2 + 29^2)
    assert table.scale == pytest.approx((16 * 17 + 29 * 31) / (16**2 + 29**2))
    with pytest.raises(ValueError, match="one measurement per arch"):
        table.calibrate(archs, [1.0])


def test_measured_table_covers_every_layer_and_op():
    space = ChainSpace(**TINY)
    net = ChainSuperNet(space, 10, 1, affine=True, track_running_stats=True)
    table = measure_table(net, (1, 8, 8), warmup=1, repeats=3)
    assert len(table.op_ms) == space.num_decisions
    for layer in table.op_ms:
        assert set(layer) == set(space.ops) and layer["skip"] == 0.0
        assert all(v > 0 for k, v in layer.items() if k != "skip")
    arch = (0, 6, 1, 2)
    alone = ChainSuperNet(space, 10, 1, True, True, arch=arch)
    assert measure_network(alone, arch, (1, 8, 8), warmup=1, repeats=3) > 0


def test_latency_script_reports_the_check(tmp_path):
    torch.set_num_threads(1)
    result = latency_script.run(
        make_cfg(
            "latency", tmp_path, ["space=chain_tiny", "check_archs=6", "warmup=1", "repeats=3"]
        )
    )
    report = result["report"]
    assert len(report["checks"]) == 6 and report["calibrated_on"] == report["held_out"] == 3
    assert math.isfinite(report["raw_error"]["mean_abs_rel"])
    assert math.isfinite(report["calibrated_error"]["max_abs_rel"])
    saved = LatencyTable.load(tmp_path / "latency_table.json")
    assert saved.scale == report["scale"] != 1.0
    assert (tmp_path / "latency_table.json").is_file() and (
        tmp_path / "latency_check.json"
    ).is_file()


def test_latency_budget_through_fit_and_query(tmp_path):
    space = ChainSpace(**TINY)
    lat = hand_table(space).save(tmp_path / "lat.json")
    with open(tmp_path / "s.csv", "w") as f:
        f.write("arch,acc\n")
        for i in range(0, space.size, 37):
            arch = space.from_index(i)
            f.write(f"{space.to_str(arch)},{50 + 3 * sum(a < 6 for a in arch)}\n")
    out = fit.run(
        make_cfg(
            "fit",
            tmp_path,
            [
                f"samples={tmp_path / 's.csv'}",
                "space=chain_tiny",
                "predictor=ridge",
                f"latency_table={lat}",
            ],
        )
    )
    rows = list(csv.DictReader(open(out["table"])))
    assert len(rows) == space.size
    row = rows[0]
    assert float(row["latency_ms"]) == hand_table(space).latency_ms(row["arch"].split("|"))
    q = query.run(
        make_cfg(
            "query", tmp_path, [f"table={out['table']}", "space=chain_tiny", "max_latency_ms=12"]
        )
    )
    assert q["top"] and all(float(r["latency_ms"]) <= 12 for r in q["top"])
    with pytest.raises(query.BudgetError, match="latency"):
        query.run(
            make_cfg(
                "query",
                tmp_path,
                [f"table={out['table']}", "space=chain_tiny", "max_latency_ms=0.5"],
            )
        )


def test_wall_times_warms_up_then_interleaves_in_alternating_order():
    calls = []
    fns = [lambda: calls.append("a"), lambda: calls.append("b")]
    times = wall_times(fns, torch.device("cpu"), warmup=2, repeats=3)
    assert calls == ["a", "a", "b", "b"] + ["a", "b", "b", "a", "a", "b"]
    assert [len(t) for t in times] == [3, 3] and all(s >= 0 for t in times for s in t)
    assert median_ms(lambda: None, torch.device("cpu"), 0, 5) >= 0

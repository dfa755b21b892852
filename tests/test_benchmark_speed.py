import json
import math

from predictor.benchmarks.speed import run
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

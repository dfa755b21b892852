"""The benchmarks' one truth reader and one report writer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from predictor.benchmarks.common import missing, read_column, write_report
from supernet.space import NB201Space

SPACE = NB201Space()


def test_read_column_joins_on_canonical_arch_strings(tmp_path: Path) -> None:
    arch = SPACE.from_index(7)
    path = tmp_path / "t.csv"
    path.write_text(f"acc,arch\n91.5,{SPACE.to_str(arch)}\n")
    assert read_column(path, "acc") == {SPACE.to_str(arch): 91.5}
    assert read_column(path, "acc", SPACE) == {SPACE.to_str(arch): 91.5}
    with pytest.raises(ValueError, match="expected columns 'arch' and 'cifar10_test'"):
        read_column(path, "cifar10_test")


def test_missing_names_the_input(tmp_path: Path) -> None:
    assert missing("truth", None) == "skipped: no truth given (pass truth=PATH)"
    assert "absent.csv not found" in missing("truth", tmp_path / "absent.csv")
    (tmp_path / "t.csv").write_text("arch\n")
    assert missing("truth", tmp_path / "t.csv") is None


def test_write_report_records_where_and_when(tmp_path: Path) -> None:
    record = write_report(tmp_path / "r.json", {"x": 1}, {"n": 2}, "| a |", tmp_path / "r.md")
    saved = json.loads((tmp_path / "r.json").read_text())
    assert saved == record and saved["x"] == 1 and saved["config"] == {"n": 2}
    assert {"date", "git", "device", "cpu", "torch_threads", "load_average"} <= set(saved)
    assert saved["device"] == "cpu"
    assert (tmp_path / "r.md").read_text() == "| a |\n"
    write_report(tmp_path / "only.json", {}, {})
    assert not (tmp_path / "only.md").exists()

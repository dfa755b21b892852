"""Shared fixtures: composing the real configs under tmp_path, and the ../shared material."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
SHARED = ROOT.parent / "shared"
NB201_CSV = SHARED / "data" / "nb201_cifar10.csv"


def make_cfg(
    config_name: str, out: Path, overrides: list[str] | None = None, tiny: bool = True
) -> DictConfig:
    """Composes `conf/<config_name>.yaml` (with the tiny preset unless `tiny=False`), writing under
    `out`."""
    preset = ["debug=tiny"] if tiny else []
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name=config_name, overrides=[*preset, *(overrides or [])])
    with open_dict(cfg):
        cfg.paths.output_dir = str(out)
        cfg.paths.root_dir = str(ROOT)
    return cfg


@pytest.fixture
def nb201_csv() -> Path:
    if not NB201_CSV.is_file():
        pytest.skip(f"NB201 ground truth not found at {NB201_CSV} (../shared is absent)")
    return NB201_CSV

"""Train one architecture standalone from scratch: `python scripts/retrain.py arch=STRING|FILE.json`.

The arch may be an arch string or the JSON that `scripts/query.py` exports. The network is the
supernet restricted to that single path, so data, optimiser and logging are those of supernet training.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import hydra  # noqa: E402
from omegaconf import DictConfig, OmegaConf, open_dict  # noqa: E402

from scripts.train import run as train  # noqa: E402
from supernet.utils import DataError, atomic_write_bytes  # noqa: E402


def arch_string(value: str) -> str:
    """An arch string, or the `arch` field of an exported JSON file.

    Raises:
        DataError: a missing or unreadable file, or one without a string `arch` field.
    """
    if value.endswith(".json"):
        path = Path(value)
        if not path.is_file():
            raise DataError(f"arch file {path} does not exist (a best_arch.json of query.py)")
        try:
            record = json.loads(path.read_bytes().decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise DataError(f"arch file {path} is not JSON text ({err})") from None
        arch = record.get("arch") if isinstance(record, dict) else None
        if not isinstance(arch, str):
            found = sorted(record) if isinstance(record, dict) else type(record).__name__
            raise DataError(
                f"arch file {path}: no string field 'arch' (found {found}); expected the "
                "best_arch.json that query.py exports"
            )
        return arch
    return value


def run(cfg: DictConfig) -> dict[str, Any]:
    """Trains the arch, tests it on the test split and writes `retrain.json`."""
    with open_dict(cfg):
        cfg.arch = arch_string(str(cfg.arch))
    try:
        hydra.utils.instantiate(cfg.space).parse(cfg.arch)
    except ValueError as err:
        raise DataError(f"arch={cfg.arch!r}: {err}") from None
    result = train(cfg, test=True)
    out = Path(cfg.paths.output_dir) / "retrain.json"
    summary = {
        "arch": cfg.arch,
        "test_acc": result["test"].get("test/acc"),
        "val_acc": result["metrics"].get("val/acc"),
        "epochs": cfg.trainer.max_epochs,
        "ckpt_path": result["ckpt_path"],
        "config": OmegaConf.to_container(cfg, resolve=True),
    }
    atomic_write_bytes(out, json.dumps(summary, indent=2, default=str).encode())
    return {**result, "summary": summary, "out": str(out)}


@hydra.main(config_path="../conf", config_name="retrain", version_base="1.3")
def main(cfg: DictConfig) -> None:
    try:
        result = run(cfg)
    except (DataError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    print(f"{cfg.arch}: test accuracy {result['summary']['test_acc']:.2f}% -> {result['out']}")


if __name__ == "__main__":
    main()

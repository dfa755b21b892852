"""Train the one-shot supernet: `python scripts/train.py [data=cifar10 data.root=DIR] [ckpt_path=...]`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import hydra  # noqa: E402
import pytorch_lightning as pl  # noqa: E402
from hydra.utils import instantiate  # noqa: E402
from omegaconf import DictConfig, OmegaConf  # noqa: E402

from supernet.utils import write_run_info  # noqa: E402


def run(
    cfg: DictConfig, extra_callbacks: list[pl.Callback] | None = None, test: bool = False
) -> dict[str, Any]:
    """Trains (or resumes) the supernet; returns the last checkpoint's path and the final metrics
    (and, with `test`, the reference archs' accuracy on the test split)."""
    if cfg.ckpt_path and not Path(cfg.ckpt_path).is_file():
        raise FileNotFoundError(f"ckpt_path={cfg.ckpt_path} does not exist; expected a last.ckpt")
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = instantiate(cfg.data)
    module = instantiate(cfg.supernet)
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values()]
    callbacks += extra_callbacks or []
    loggers = [instantiate(c) for c in (cfg.get("logger") or {}).values()]
    trainer: pl.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    out = Path(cfg.paths.output_dir)
    write_run_info(out, "train", OmegaConf.to_container(cfg, resolve=True))
    trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.ckpt_path)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    tested = trainer.test(module, datamodule=datamodule, verbose=False)[0] if test else {}
    ckpt = trainer.checkpoint_callback.last_model_path if trainer.checkpoint_callback else ""
    return {
        "ckpt_path": ckpt,
        "metrics": metrics,
        "test": {k: float(v) for k, v in tested.items()},
        "output_dir": str(out),
        "bad_steps": module.bad_steps,
    }


@hydra.main(config_path="../conf", config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> None:
    result = run(cfg)
    print(f"last checkpoint: {result['ckpt_path']}")


if __name__ == "__main__":
    main()

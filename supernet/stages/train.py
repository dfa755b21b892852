"""Train the one-shot supernet: `python scripts/train.py [data=cifar10 data.root=DIR] [ckpt_path=...]`."""

from __future__ import annotations

import importlib.util
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.loggers import CSVLogger
from pytorch_lightning.utilities.exceptions import SIGTERMException

from supernet.interrupt import InterruptCheckpoint
from supernet.module import check_resume
from supernet.progress import LogProgress
from supernet.utils import DataError, check_count, write_run_info

# Loggers whose package is optional (conf/logger/): the class -> (module, pip requirement)
OPTIONAL_LOGGERS = {
    "WandbLogger": ("wandb", "wandb"),
    "MLFlowLogger": ("mlflow", "mlflow"),
}


def run(
    cfg: DictConfig, extra_callbacks: list[pl.Callback] | None = None, test: bool = False
) -> dict[str, Any]:
    """Trains (or resumes) the supernet; returns the last checkpoint's path and the final metrics
    (and, with `test`, the reference archs' accuracy on the test split).

    Raises:
        FileNotFoundError: `ckpt_path` does not exist.
        DataError: a bad count, a logger whose package is missing, a corrupt or foreign
            checkpoint, or a resume whose restored learning-rate schedule would not fit
            `trainer.max_epochs`.
        SystemExit: code 143 when SIGTERM (a cluster's time limit) stopped training, 130 when
            Ctrl-C (SIGINT) did, after saying which checkpoint to resume from.
    """
    if cfg.ckpt_path and not Path(cfg.ckpt_path).is_file():
        raise FileNotFoundError(f"ckpt_path={cfg.ckpt_path} does not exist; expected a last.ckpt")
    max_epochs = check_count(
        "trainer.max_epochs", cfg.trainer.max_epochs, 1, "epochs to train the supernet"
    )
    check_count("data.batch_size", cfg.data.batch_size, 1)
    check_logger_packages(cfg.get("logger") or {})
    if cfg.ckpt_path:  # corrupt or foreign files first; the schedule is checked on loading it
        check_resume(cfg.ckpt_path)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = instantiate(cfg.data)
    module = instantiate(cfg.supernet)
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values()]
    callbacks += extra_callbacks or []
    loggers = [instantiate(c) for c in (cfg.get("logger") or {}).values()]
    keep_csv_history(loggers)
    trainer: pl.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    out = Path(cfg.paths.output_dir)
    write_run_info(out, "train", OmegaConf.to_container(cfg, resolve=True))
    fit(trainer, module, datamodule, cfg.ckpt_path, max_epochs)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    tested = trainer.test(module, datamodule=datamodule, verbose=False)[0] if test else {}
    ckpt = trainer.checkpoint_callback.last_model_path if trainer.checkpoint_callback else ""
    return {
        "ckpt_path": ckpt,
        "metrics": metrics,
        "test": {k: float(v) for k, v in tested.items()},
        "test_images": test_images(datamodule) if test else 0,
        "output_dir": str(out),
        "bad_steps": module.bad_steps,
    }


def test_images(datamodule: pl.LightningDataModule) -> int:
    """How many images the test split holds (all of them, whichever ranks tested them)."""
    if not hasattr(datamodule, "splits"):  # a launcher whose ranks ran in other processes
        datamodule.setup("test")
    return len(datamodule.splits["test"][1])


def check_logger_packages(loggers: Any) -> None:
    """Refuses, before anything is built, a logger (`logger=wandb`, `logger=mlflow`) whose
    package is not installed, naming it and the pip command.

    Raises:
        DataError: a logger's package is missing.
    """
    for key, node in loggers.items():
        target = str((node or {}).get("_target_", ""))
        module, requirement = OPTIONAL_LOGGERS.get(target.rsplit(".", 1)[-1], (None, None))
        if module and importlib.util.find_spec(module) is None:
            raise DataError(
                f"logger {key} ({target}) needs the {module} package, which is not installed: "
                f"pip install {requirement} (or pip install 'oneshot-nas[{module}]'), or choose "
                "another logger (logger=default, logger=csv)"
            )


def fit(
    trainer: pl.Trainer,
    module: pl.LightningModule,
    datamodule: pl.LightningDataModule,
    ckpt_path: str | None,
    max_epochs: int,
) -> None:
    """`trainer.fit`, with a stop by a signal turned into a non-zero exit that says where to
    resume (Lightning's exit codes are 0 for SIGTERM and 1 for Ctrl-C).

    Raises:
        SystemExit: 143 after SIGTERM, 130 after Ctrl-C.
    """
    main = threading.current_thread() is threading.main_thread()
    sigint = signal.getsignal(signal.SIGINT) if main else None
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
    except SIGTERMException:  # Lightning's is a SystemExit with code 0: a chain would carry on
        stopped(trainer, "SIGTERM", 143, max_epochs, ckpt_path)
    except SystemExit:  # Lightning's answer to KeyboardInterrupt, after its on_exception hooks
        if not trainer.interrupted:
            raise
        stopped(trainer, "Ctrl-C (SIGINT)", 130, max_epochs, ckpt_path)
    finally:
        if main:  # Lightning ignores SIGINT from its first one on; Ctrl-C works again after
            signal.signal(signal.SIGINT, sigint)


def stopped(
    trainer: pl.Trainer, why: str, code: int, max_epochs: int, resumed: str | None
) -> None:
    """Says which checkpoint resumes training stopped by `why`, then exits with `code`: the
    interrupted epoch's checkpoint (Ctrl-C), else this run's last.ckpt, else the one it resumed
    from."""
    saved = [c.saved for c in trainer.callbacks if isinstance(c, InterruptCheckpoint) and c.saved]
    last = trainer.checkpoint_callback.last_model_path if trainer.checkpoint_callback else ""
    ckpt = str(saved[0]) if saved else last or resumed
    where = f"resume with ckpt_path={ckpt}" if ckpt else "no checkpoint was saved yet"
    print(
        f"error: training stopped by {why} in epoch {trainer.current_epoch} of {max_epochs} "
        f"(step {trainer.global_step}); {where}",
        file=sys.stderr,
    )
    raise SystemExit(code) from None


def keep_csv_history(loggers: list[Any]) -> list[Path]:
    """A CSV logger writing into a folder that already holds `metrics.csv` (a resume in the same
    output folder) would replace it: the earlier file is kept as `metrics.<k>.csv` instead."""
    kept = []
    for lg in loggers:
        if isinstance(lg, CSVLogger):
            old = Path(lg.log_dir) / "metrics.csv"
            if old.is_file():
                k = 1
                while (dest := old.with_name(f"metrics.{k}.csv")).exists():
                    k += 1
                old.rename(dest)
                kept.append(dest)
    return kept


def report(cfg: DictConfig, result: dict[str, Any]) -> None:
    print(f"last checkpoint: {result['ckpt_path']}")


class EpochProgress(pl.Callback):
    """Logs the supernet's training through `supernet.progress.LogProgress`: epochs done, time
    left, the latest reference-arch accuracy (`val/acc`) and training loss. Lightning's own bar
    writes nothing readable to a file.

    Args:
        log: where the lines go.
        every_s: seconds between lines when stdout is not a terminal.
    """

    def __init__(self, log: logging.Logger, every_s: float = 30.0) -> None:
        self.logger, self.every_s = log, every_s
        self.progress: LogProgress | None = None

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        total = int(trainer.max_epochs or 0)
        self.progress = LogProgress(
            "training the supernet (epochs)",
            total,
            self.logger,
            completed=trainer.current_epoch,
            every_s=self.every_s,
            bar=False,  # Lightning shows its own bar on a terminal
        ).__enter__()

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if self.progress is None:
            return
        m = trainer.callback_metrics
        note = ", ".join(
            f"{k} {float(m[k]):.3g}" for k in ("val/acc", "train/loss_epoch") if k in m
        )
        self.progress.advance(1, note)

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        if self.progress is not None:
            self.progress.__exit__(None, None, None)
            self.progress = None

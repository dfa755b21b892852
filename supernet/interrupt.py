"""Ctrl-C during training: finish the current step, save a checkpoint of the epoch so far, stop."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any

import pytorch_lightning as pl


class InterruptCheckpoint(pl.Callback):
    """On the first SIGINT (Ctrl-C), training stops after the step in progress and the state at
    that point, the interrupted epoch's progress included, is saved to `<dirpath>/<filename>.ckpt`;
    `ckpt_path=` resumes from it. A second Ctrl-C stops at once, without saving (an interrupt inside
    an optimiser step would save half-updated weights, so the first one waits for the step's end).

    The file is removed once a run in the same folder finishes training: `last.ckpt` supersedes it.
    Lightning then raises `KeyboardInterrupt` and exits; `supernet.stages.train.run` turns that into
    exit code 130 naming the file.

    Args:
        dirpath: folder of the checkpoint (the checkpoints folder of the run).
        filename: its name without `.ckpt`.
    """

    def __init__(self, dirpath: str | Path, filename: str = "interrupted") -> None:
        if not filename:
            raise ValueError("InterruptCheckpoint: filename='' ; expected a file name")
        self.path = Path(dirpath) / f"{filename}.ckpt"
        self.requested = False
        self.saved: Path | None = None
        self._previous: Any = None

    def _on_sigint(self, signum: int, frame: Any) -> None:
        self.requested = True
        signal.signal(signal.SIGINT, self._previous)  # a second Ctrl-C interrupts at once

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.requested, self.saved = False, None
        if threading.current_thread() is threading.main_thread():  # signals reach only that one
            self._previous = signal.signal(signal.SIGINT, self._on_sigint)

    def _restore(self) -> None:
        if self._previous is not None and threading.current_thread() is threading.main_thread():
            if signal.getsignal(signal.SIGINT) == self._on_sigint:
                signal.signal(signal.SIGINT, self._previous)
            self._previous = None

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        # Not at an epoch's last batch: the module steps the schedule after this hook. Validation
        # and last.ckpt follow, and the next epoch's first batch stops.
        stop = self.requested and not trainer.is_last_batch
        if trainer.world_size > 1:  # every rank saves and stops together, whichever got the signal
            stop = trainer.strategy.reduce_boolean_decision(stop, all=False)
        if stop:
            # saved where ModelCheckpoint's every_n_train_steps saves: Lightning resumes from here
            trainer.save_checkpoint(self.path)
            self.saved = self.path
            raise KeyboardInterrupt

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._restore()
        if self.path.exists():  # finished: an earlier interruption's state is out of date
            trainer.strategy.remove_checkpoint(self.path)

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        self._restore()

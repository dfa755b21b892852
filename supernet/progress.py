"""Progress that survives a log file: a live bar on a terminal, periodic log lines everywhere else.

A rich bar is transient and writes nothing once stdout goes to a file (nohup, CI, SLURM); a long
loop then looks hung. `LogProgress` logs `label: done/total (pct), elapsed, ~left` through `logging`
at most every `every_s` seconds when stdout is not a terminal, and always one line at the end, so
Hydra's `<task>.log` holds it either way. (Training's epochs go through it too: `EpochProgress`
in `supernet.stages.train`. No Lightning here: every command's Hydra callback imports this module,
and Lightning costs seconds to import.)
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from types import TracebackType
from typing import Any


def format_seconds(s: float) -> str:
    """`42 s`, `3 min 05 s`, `1 h 02 min`."""
    s = max(0.0, float(s))
    if s < 60:
        return f"{s:.0f} s"
    if s < 3600:
        return f"{int(s // 60)} min {int(s % 60):02d} s"
    return f"{int(s // 3600)} h {int(s % 3600 // 60):02d} min"


class LogProgress:
    """A context manager counting work done; `advance()` after each item.

    Args:
        label: what is being done, e.g. `evaluating subnets`.
        total: items in all (those already done count through `completed`).
        log: where the lines go.
        completed: items done before this run (a resumed loop).
        every_s: seconds between lines when stdout is not a terminal; 30 s keeps a 10-minute
            loop to ~20 lines.
        bar: show a transient rich bar; None: when stdout is a terminal.
    """

    def __init__(
        self,
        label: str,
        total: int,
        log: logging.Logger,
        completed: int = 0,
        every_s: float = 30.0,
        bar: bool | None = None,
    ) -> None:
        self.label, self.total, self.log = label, int(total), log
        self.done = self.start_done = int(completed)
        self.every_s = float(every_s)
        self.bar = sys.stdout.isatty() if bar is None else bar
        self._progress: Any = None
        self.note = ""
        self._task: Any = None

    def __enter__(self) -> LogProgress:
        self.t0 = self.last = time.perf_counter()
        if self.bar:
            from rich.progress import Progress

            self._progress = Progress(transient=True)
            self._progress.start()
            self._task = self._progress.add_task(self.label, total=self.total, completed=self.done)
        return self

    def line(self) -> str:
        """`label: done/total (pct), elapsed, ~left` (the estimate from this run's own rate)."""
        elapsed = time.perf_counter() - self.t0
        pct = 100.0 * self.done / self.total if self.total else 100.0
        text = f"{self.label}: {self.done}/{self.total} ({pct:.0f}%), {format_seconds(elapsed)}"
        ran = self.done - self.start_done
        if 0 < ran and self.done < self.total:
            text += f", ~{format_seconds(elapsed / ran * (self.total - self.done))} left"
        return f"{text}; {self.note}" if self.note else text

    def advance(self, n: int = 1, note: str = "") -> None:
        """Counts `n` more items done; `note` (e.g. the latest metric) closes the next line."""
        self.done, self.note = self.done + n, note
        if self._progress is not None:
            self._progress.advance(self._task, n)
            return
        now = time.perf_counter()
        if now - self.last >= self.every_s and self.done < self.total:
            self.last = now
            self.log.info(self.line())

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()
        if exc_type is None:
            self.log.info(self.line())


class Heartbeat:
    """While its `with` body runs, logs `label: still running, <elapsed>` every `every_s` seconds
    from a daemon thread: for a loop that reports no progress of its own (the predictor's fit), so
    that a log file shows it is alive.

    Args:
        label: e.g. `stage fit`.
        log: where the lines go.
        every_s: seconds between lines.
        enabled: False makes it do nothing (e.g. on a terminal).
    """

    def __init__(
        self, label: str, log: logging.Logger, every_s: float = 30.0, enabled: bool = True
    ) -> None:
        self.label, self.log, self.every_s, self.enabled = label, log, float(every_s), enabled
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _beat(self) -> None:
        t0 = time.perf_counter()
        while not self._stop.wait(self.every_s):
            self.log.info(
                f"{self.label}: still running, {format_seconds(time.perf_counter() - t0)}"
            )

    def __enter__(self) -> Heartbeat:
        if self.enabled:
            self._thread = threading.Thread(target=self._beat, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

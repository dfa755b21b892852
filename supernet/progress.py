"""Progress that survives a log file: a live bar on a terminal, periodic log lines everywhere else.

A rich bar is transient and writes nothing once stdout goes to a file (nohup, CI, SLURM); a long
loop then looks hung. `LogProgress` logs `label: done/total (pct), elapsed, ~left` through `logging`
at most every `every_s` seconds when stdout is not a terminal, and always one line at the end, so
Hydra's `<task>.log` holds it either way.
"""

from __future__ import annotations

import logging
import sys
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
        return text

    def advance(self, n: int = 1) -> None:
        self.done += n
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

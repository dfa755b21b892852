"""Known messages that every run printed and no user can act on, dropped by the entry points."""

from __future__ import annotations

import logging
import warnings

LIGHTNING_LOG = "pytorch_lightning.utilities.rank_zero"


class _DropLitLoggerTip(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "litlogger" not in record.getMessage()


def silence_known_noise() -> None:
    """Drops Lightning's tip to install litlogger (an INFO line at every `Trainer` start) and the
    deprecation warning of torch's `LeafSpec` that Lightning's own code triggers (not ours to
    fix). Other warnings and Lightning messages are untouched. Safe to call more than once."""
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")
    log = logging.getLogger(LIGHTNING_LOG)
    if not any(isinstance(f, _DropLitLoggerTip) for f in log.filters):
        log.addFilter(_DropLitLoggerTip())

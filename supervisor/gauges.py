"""A kind's own value gauge: declared with its kind (WatchdogKind in supervisor/watchdogs/base.py),
registered by supervisor/publish/metrics.py. Its own module so that metrics does not import
the kinds."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KindGauge:
    """A kind's own value gauge (docs/operations.md, "What it publishes"), fed from its
    verdicts' values."""

    name: str
    help: str
    subject_label: str | None  # label carrying the verdict's subject; None: one per watchdog
    watchdog_label: bool = True
    subject: str | None = None  # only verdicts about this subject feed it

    @property
    def labels(self) -> list[str]:
        names = ["watchdog"] if self.watchdog_label else []
        return names + ([self.subject_label] if self.subject_label else [])

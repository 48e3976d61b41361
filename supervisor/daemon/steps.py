"""A pass made of steps that fail alone. Each step handles the I/O errors and the bad data it
expects itself (Redis away, an unreadable entry); what escapes a step is a bug: it is logged
with its traceback and counted (`supervisor_pass_step_failures_total{step}`), and the pass
goes on with its next step. A takeover still engages what it held back when reading the old
leader's orders failed; a housekeeping pass still writes the heartbeat when reconciling
failed."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable

from supervisor.publish.metrics import Metrics

log = logging.getLogger("supervisor")

# Every step name (the metric's label values: a fixed set, created at 0).
HOUSEKEEPING_STEPS = ("check_state_dir", "reconcile", "publish_state", "beat_deadmen", "replay")
TAKE_OVER_STEPS = ("reconcile", "adopt_orders", "take_up_held", "publish_state")
ALL_STEPS = tuple(f"housekeeping.{s}" for s in HOUSEKEEPING_STEPS) + tuple(
    f"take_over.{s}" for s in TAKE_OVER_STEPS
)

Step = Callable[[], Awaitable[object] | object]


def prepare(metrics: Metrics) -> None:
    for name in ALL_STEPS:
        metrics.step_failures.labels(name)


class Pass:
    def __init__(self, name: str, metrics: Metrics) -> None:
        self.name = name
        self.metrics = metrics
        self.failed: list[str] = []

    async def step(self, name: str, work: Step) -> None:
        """Run one step (a function or a coroutine function); a bug in it ends only it."""
        try:
            result = work()
            if inspect.isawaitable(result):
                await result
        except Exception:
            label = f"{self.name}.{name}"
            self.failed.append(name)
            self.metrics.step_failures.labels(label).inc()
            log.exception("bug: %s step %s failed; the rest of the pass goes on", self.name, name)

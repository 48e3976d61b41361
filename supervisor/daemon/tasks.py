"""Work the daemon started in the background: the two-phase shutdown waits for it, and a bug
that ends it is logged with its traceback."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger("supervisor")


class Tasks:
    def __init__(self) -> None:
        self.in_flight: set[asyncio.Task[Any]] = set()

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` as a task the two-phase shutdown waits for; a bug in it is logged."""
        self.track(asyncio.get_running_loop().create_task(work))

    def track(self, task: asyncio.Task[Any]) -> None:
        """Let the shutdown wait for `task`, and log it if a bug ends it."""
        self.in_flight.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self.in_flight.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("bug: background task failed", exc_info=task.exception())

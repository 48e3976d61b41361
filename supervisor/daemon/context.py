"""What every part of the daemon shares, and the few services all of them use.

The assembly (everything built from the config) is replaced whole by a reload; the runtime
(what was learned) survives it. Work started in the background goes through `spawn`, so the
two-phase shutdown can wait for it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import replace
from typing import Any

import anyio
import httpx
from redis.exceptions import RedisError

from supervisor.daemon.assembly import Assembly
from supervisor.daemon.runtime import Runtime
from supervisor.errors import SupervisorError, first_line
from supervisor.global_state import GlobalState
from supervisor.publish.audit import AuditEvent
from supervisor.publish.metrics import Metrics
from supervisor.publish.systemd import Notifier

log = logging.getLogger("supervisor")

# What talking to Redis may raise when Redis, or the way to it, is in trouble. Anything else
# is a bug and is logged with its traceback.
REDIS_TROUBLE = (RedisError, OSError, TimeoutError)
# ...and what an actuator's store or endpoint may raise (ActuatorError is a SupervisorError).
ACTUATOR_TROUBLE = (*REDIS_TROUBLE, httpx.HTTPError, SupervisorError)


class Context:
    def __init__(
        self,
        assembly: Assembly,
        metrics: Metrics,
        notifier: Notifier,
        clock: Callable[[], float],
    ) -> None:
        self.assembly = assembly
        self.metrics = metrics
        self.notifier = notifier
        self.clock = clock
        self.started_at = clock()
        self.runtime = Runtime(trading_since=self.started_at)
        self.in_flight: set[asyncio.Task[Any]] = set()
        self._waiting: dict[str, Callable[[], Awaitable[None]]] = {}  # newest write per key
        self._writing: set[str] = set()  # keys with a writer task

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

    def audit(self, event: AuditEvent) -> None:
        """Record without blocking the caller; the trail keeps the order and never raises."""
        self.spawn(self.assembly.audit.record(event))

    async def publish(self, write: Awaitable[None]) -> None:
        """Publishing to Redis is best effort: an outage degrades health, never the loop."""
        try:
            with anyio.fail_after(self.assembly.redis_timeout_s * 2):
                await write
        except REDIS_TROUBLE as exc:
            self.note_problem("redis", exc)
            return
        if self.runtime.problems.pop("redis", None) is not None:
            log.warning("redis: reachable again")

    def publish_soon(self, key: str, write: Callable[[], Awaitable[None]]) -> None:
        """Publish in the background, newest wins: while a write for `key` is in flight, only
        the newest waiting one is kept. A slow Redis then never holds up a watchdog cycle."""
        self._waiting[key] = write
        if key not in self._writing:
            self._writing.add(key)
            self.spawn(self._drain(key))

    async def _drain(self, key: str) -> None:
        try:
            while (write := self._waiting.pop(key, None)) is not None:
                await self.publish(write())
        finally:
            self._writing.discard(key)

    def note_problem(self, component: str, exc: BaseException) -> None:
        """Say once what is wrong with one of the supervisor's own dependencies."""
        detail = "timed out" if isinstance(exc, TimeoutError) else first_line(exc)
        if component not in self.runtime.problems:
            log.error("%s: %s (watchdogs that need it go UNKNOWN; retrying)", component, detail)
        self.runtime.problems[component] = detail

    def refresh(self) -> GlobalState:
        """Derive the global answer again and show it: metrics, STATUS, a log line on change."""
        runtime = self.runtime
        summary = runtime.global_state(self.assembly.watchdogs)
        previous = runtime.summary
        if previous is None or previous.trading_state != summary.trading_state:
            runtime.trading_since = self.clock()
            if previous is not None:
                runtime.restored = False  # a new state is no longer the one restored
                summary = replace(summary, restored=False)
                log.warning(
                    "trading_state=%s (was %s): %s",
                    summary.trading_state.name,
                    previous.trading_state.name,
                    summary.reason,
                )
        runtime.summary = summary
        self.metrics.observe_state(
            summary.trading_state,
            summary.health,
            breaker=runtime.breaker_tripped,
            kill=runtime.kill_engaged,
        )
        self.notifier.status(summary.status_line())
        return summary

    async def publish_state(self) -> None:
        summary = self.refresh()
        now = self.clock()
        snapshot = self.runtime.snapshot(summary, self.assembly.instance_id, now)
        await self.publish(self.assembly.publisher.publish_state(snapshot))

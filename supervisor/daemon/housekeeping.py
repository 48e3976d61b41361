"""Housekeeping, once a second: the systemd keepalive, the heartbeat, reconciliation,
the published state, the deadman beats and the audit outbox replay."""

from __future__ import annotations

import logging

import anyio

from supervisor.actuators.deadman import Deadman
from supervisor.constants import HOUSEKEEPING_INTERVAL_S, WATCHDOG_LATE_FACTOR
from supervisor.daemon.context import ACTUATOR_TROUBLE, Context
from supervisor.daemon.reconcile import Reconciler
from supervisor.model import TradingState

log = logging.getLogger("supervisor")

AUDIT_REPLAY_BUDGET_S = 2.0  # per pass: the outbox drains over several passes if it must


class Housekeeping:
    def __init__(self, context: Context, reconciler: Reconciler) -> None:
        self.context = context
        self.reconciler = reconciler
        self._beating: set[str] = set()  # deadmen with a heartbeat in flight

    async def run(self) -> None:
        context = self.context
        now = context.clock()
        context.metrics.heartbeat.set(now)
        late = self.late_watchdogs(now)
        if late:
            log.error("not sending WATCHDOG=1: late watchdogs: %s", ", ".join(late))
        else:
            context.notifier.watchdog()
        await self.reconciler.refresh()
        await context.publish_state()
        self.beat_deadmen(now)
        with anyio.move_on_after(AUDIT_REPLAY_BUDGET_S):
            await context.assembly.audit.replay()

    def late_watchdogs(self, now: float) -> list[str]:
        """Watchdogs that have not finished a run within twice their interval (plus one
        housekeeping period): a wedged loop or scheduler."""
        late = []
        for name, watchdog in self.context.assembly.watchdogs.items():
            run = self.context.runtime.runs.get(name)
            last = run.started_at + run.duration_s if run else self.context.started_at
            limit_s = WATCHDOG_LATE_FACTOR * watchdog.config.interval_s + HOUSEKEEPING_INTERVAL_S
            if now - last > limit_s:
                late.append(name)
        return late

    def beat_deadmen(self, now: float) -> None:
        """Keep the venues' cancel-on-disconnect armed, only while trading is ACTIVE: once
        the state is more restrictive the beats stop and the venue cancels on its own."""
        summary = self.context.runtime.summary
        if summary is None or summary.trading_state is not TradingState.ACTIVE:
            return
        for deadman in self.context.assembly.deadmen.values():
            if deadman.name not in self._beating:
                self._beating.add(deadman.name)
                self.context.spawn(self._beat(deadman, now))

    async def _beat(self, deadman: Deadman, now: float) -> None:
        context = self.context
        problem = f"deadman {deadman.name}"
        try:
            await deadman.heartbeat(now)
        except ACTUATOR_TROUBLE as exc:
            context.metrics.actions.labels(deadman.name, "failed").inc()
            if problem not in context.runtime.problems:
                log.error("deadman=%s heartbeat failed: %s", deadman.name, exc)
            context.runtime.problems[problem] = "heartbeat failing"
        else:
            context.metrics.actions.labels(deadman.name, "heartbeat").inc()
            context.runtime.problems.pop(problem, None)
        finally:
            self._beating.discard(deadman.name)

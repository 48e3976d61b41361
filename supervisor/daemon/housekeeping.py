"""Housekeeping, once a second: the systemd keepalive, the heartbeat, reconciliation,
the published state, the deadman beats and the audit outbox replay."""

from __future__ import annotations

import asyncio
import logging

import anyio

from supervisor.actuators.deadman import Deadman
from supervisor.constants import HOUSEKEEPING_INTERVAL_S, WATCHDOG_LATE_FACTOR
from supervisor.daemon.context import ACTUATOR_TROUBLE, Context
from supervisor.daemon.display import Display
from supervisor.daemon.engagements import Engagements
from supervisor.daemon.problems import Source
from supervisor.daemon.publishing import Publishing
from supervisor.daemon.reconcile import Reconciler
from supervisor.daemon.steps import Pass
from supervisor.model import TradingState
from supervisor.state_dir import unwritable

log = logging.getLogger("supervisor")

AUDIT_REPLAY_BUDGET_S = 2.0
STATE_DIR_CHECK_BUDGET_S = 2.0  # per pass: the outbox drains over several passes if it must
STATE_DIR_PROBE_EVERY_S = 3.0  # while writable; a failed write between probes says so at once


class Housekeeping:
    def __init__(
        self,
        context: Context,
        reconciler: Reconciler,
        engagements: Engagements,
        display: Display,
        publishing: Publishing,
    ) -> None:
        self.context = context
        self.reconciler = reconciler
        self.engagements = engagements
        self.display = display
        self.publishing = publishing
        self._beating: set[str] = set()  # deadmen with a heartbeat in flight
        self._syncing: asyncio.Task[None] | None = None
        self._probed_at = float("-inf")  # monotonic: the last state_dir probe

    async def run(self) -> None:
        """The scheduler's job. The keepalive never waits for I/O: it means "the loop and
        the scheduler are alive and every watchdog ran", never "Redis answers". The pass
        that talks to Redis runs beside it, one at a time."""
        now = self.context.clock()
        self.keepalive(now)
        if self._syncing is None or self._syncing.done():
            self._syncing = asyncio.get_running_loop().create_task(self.sync(now))
            self.context.tasks.track(self._syncing)

    def keepalive(self, now: float) -> None:
        context = self.context
        context.metrics.heartbeat.set(now)
        self.display.observe_leadership()
        late = self.late_watchdogs(now)
        if late:
            log.error("not sending WATCHDOG=1: late watchdogs: %s", ", ".join(late))
        else:
            context.notifier.watchdog()

    async def sync(self, now: float) -> None:
        """Reconcile with the stores, publish the state and heartbeat, beat the deadmen,
        replay the audit outbox: steps that fail alone (one failing never stops the
        heartbeat)."""
        steps = Pass("housekeeping", self.context.metrics)
        await steps.step("check_state_dir", self.check_state_dir)
        await steps.step("reconcile", self.reconciler.refresh)
        await steps.step("publish_state", self.publishing.publish_state)
        await steps.step("beat_deadmen", lambda: self.beat_deadmen(now))
        await steps.step("replay", self.replay_audit)

    async def replay_audit(self) -> None:
        with anyio.move_on_after(AUDIT_REPLAY_BUDGET_S):
            await self.context.assembly.audit.replay()

    async def check_state_dir(self) -> None:
        """Latches and the audit outbox must be writable: DEGRADED while they are not.
        Probed every STATE_DIR_PROBE_EVERY_S while it is, every pass while it is not (the
        probe's write, fsync and unlink were a third of an idle daemon's work)."""
        now = self.context.monotonic()
        failing = self.context.runtime.problems.has(Source.STATE_DIR)
        if not failing and now - self._probed_at < STATE_DIR_PROBE_EVERY_S:
            return
        self._probed_at = now
        state_dir = self.context.assembly.settings.supervisor.state_dir
        with anyio.move_on_after(STATE_DIR_CHECK_BUDGET_S) as scope:
            problem = await anyio.to_thread.run_sync(unwritable, state_dir, abandon_on_cancel=True)
        if scope.cancelled_caught:
            problem = f"cannot write {state_dir}: no answer within {STATE_DIR_CHECK_BUDGET_S}s"
        problems = self.context.runtime.problems
        if problem is None:
            if problems.clear(Source.STATE_DIR):
                log.warning("state_dir: writable again; saving what could not be saved")
                self.engagements.persist()
        elif problems.detail(Source.STATE_DIR) != problem:
            log.error("state_dir: %s (latches and the audit outbox cannot be saved)", problem)
            problems.note(Source.STATE_DIR, problem)

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
        if not self.context.may_act():  # the leader beats (with [ha] on)
            return
        for deadman in self.context.assembly.deadmen.values():
            if deadman.name not in self._beating:
                self._beating.add(deadman.name)
                self.context.tasks.spawn(self._beat(deadman, now))

    async def _beat(self, deadman: Deadman, now: float) -> None:
        context = self.context
        try:
            await deadman.heartbeat(now)
        except ACTUATOR_TROUBLE as exc:
            context.metrics.actions.labels(deadman.name, "failed").inc()
            if context.runtime.problems.note(Source.DEADMAN, "heartbeat failing", deadman.name):
                log.error("deadman=%s heartbeat failed: %s", deadman.name, exc)
        else:
            context.metrics.actions.labels(deadman.name, "heartbeat").inc()
            context.runtime.problems.clear(Source.DEADMAN, deadman.name)
        finally:
            self._beating.discard(deadman.name)

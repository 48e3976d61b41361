"""One watchdog cycle: read and judge (verdicts), apply the policy (decisions), hand the
decisions to acting, and publish the run."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Collection

import anyio

from supervisor.daemon.acting import Acting
from supervisor.daemon.context import Context
from supervisor.daemon.display import Display
from supervisor.daemon.problems import Source
from supervisor.daemon.publishing import Publishing
from supervisor.daemon.repairs import Repairs
from supervisor.daemon.schedule import Schedule
from supervisor.model import Decision, Status, WatchdogRun
from supervisor.policy import PolicyState, step
from supervisor.quantities import format_duration
from supervisor.watchdogs.base import run_check

log = logging.getLogger("supervisor")

CUT_OFFS_BEFORE_DEGRADED = 3
DISPATCH_WAIT_S = 0.05  # at most this long a run waits for its actions to be on their way


class Cycle:
    def __init__(
        self,
        context: Context,
        acting: Acting,
        repairs: Repairs,
        schedule: Schedule,
        display: Display,
        publishing: Publishing,
    ) -> None:
        self.context = context
        self.acting = acting
        self.repairs = repairs
        self.schedule = schedule
        self.display = display
        self.publishing = publishing

    async def run_job(self, name: str) -> None:
        """The scheduler's entry point: a cycle the shutdown waits for, and that a bug in
        cannot take away from the scheduler."""
        task = asyncio.current_task()
        assert task is not None, "the scheduler runs jobs as tasks"
        self.context.tasks.in_flight.add(task)
        try:
            await self.run(name)
        except asyncio.CancelledError:
            # Only the shutdown cancels a cycle, after its grace; not re-raised, because
            # APScheduler would log a cancelled job as an error with a traceback.
            log.warning("watchdog=%s check cancelled by the shutdown", name)
        except Exception:
            log.exception("watchdog=%s cycle failed", name)
        finally:
            self.context.tasks.in_flight.discard(task)

    async def run(self, name: str) -> WatchdogRun | None:
        """Evaluate watchdog `name` once, decide, act and publish; None if it is gone."""
        context = self.context
        assembly = context.assembly
        watchdog = assembly.watchdogs.get(name)
        if watchdog is None:  # removed by a reload while this run was queued
            return None
        now = context.clock()
        started = time.perf_counter()
        deadline_run = self.schedule.is_deadline_run(name)
        session = assembly.session_of(watchdog)
        evaluation = await run_check(watchdog, session, now, deadline_run=deadline_run)
        duration_s = time.perf_counter() - started
        if context.assembly is not assembly:  # reloaded meanwhile: these verdicts are stale
            return None
        verdicts = evaluation.verdicts
        self._count_cut_offs(name, evaluation.cut_off, watchdog.config.check_timeout_s)
        previous = context.runtime.policy.get(name, PolicyState())
        rules = assembly.protection.rules[name]
        state, decisions = step(rules, previous, name, verdicts, now, lambda: uuid.uuid4().hex)
        context.runtime.policy[name] = state
        engaged_by = {latch.watchdog for latch in context.runtime.engaged.values()}
        log_transition(previous, state, name, engaged_by)  # what was seen, then what was done
        await self._dispatch(decisions)
        # Recorded once the actions are on their way: handing the run over wakes the
        # recorder's thread, whose encoding of 1,000 verdicts took the GIL from the loop
        # while it sent the kill (fault -> kill p50 9 ms -> 16 ms; docs/benchmarks.md).
        context.recorder.record(assembly.settings, name, now, verdicts, watchdog.subjects, session)
        for remedy in watchdog.remedies():
            self.repairs.start(remedy)
        # The clock now, not at the run's start: a delay from the start would make the next
        # run late by as long as this one took (100 ms for 100,000 instruments).
        next_run = self.schedule.rearm(name, verdicts, context.clock(), duration_s)
        run = WatchdogRun(
            name, state.status, verdicts, now, duration_s, state.streak, next_run, state.reason
        )
        context.runtime.runs[name] = run
        context.metrics.observe_run(watchdog.kind, run, watchdog.config.subject_metrics)
        context.metrics.observe_confirmed(name, state.confirmed)
        if context.leads():  # a follower's verdicts go in its own record (ha/instances.py)
            self.publishing.publish_soon(
                f"watchdog:{name}", lambda: assembly.publisher.publish_run(run)
            )
        return run

    async def _dispatch(self, decisions: list[Decision]) -> None:
        """Start the actions, and let them go out before anything else of this run: the
        event loop is theirs until each request is written (or DISPATCH_WAIT_S has passed);
        the decisions' audit records (a log line, a stream entry, an fsync) come after."""
        announce = self.acting.announcement(decisions)
        dispatched = [sent for d in decisions for sent in self.acting.start(d, announce)]
        if dispatched:
            with anyio.move_on_after(DISPATCH_WAIT_S):
                for sent in dispatched:
                    await sent.wait()
            self.display.refresh()  # the ordered level in STATUS and metrics, from now on
        announce()  # unless an action's own record came first and announced them

    def _count_cut_offs(self, name: str, cut_off: bool, timeout_s: float) -> None:
        """A check cut off by its timeout run after run leaves the supervisor blind to what
        it watches: that is its own ill health (DEGRADED, named in STATUS), never a quiet
        UNKNOWN forever."""
        runtime = self.context.runtime
        if not cut_off:
            runtime.cut_offs.pop(name, None)
            if runtime.problems.clear(Source.WATCHDOG, name):
                log.warning("watchdog=%s checks finish within their timeout again", name)
            return
        self.context.metrics.check_cut_offs.labels(name).inc()
        count = runtime.cut_offs[name] = runtime.cut_offs.get(name, 0) + 1
        if count >= CUT_OFFS_BEFORE_DEGRADED:
            problem = f"checks cut off after {format_duration(timeout_s)}"
            if runtime.problems.note(Source.WATCHDOG, problem, name):
                log.error(
                    "watchdog=%s: %d checks in a row cut off after %s: it cannot keep up"
                    " (too much to read, or its source hangs)",
                    name,
                    count,
                    format_duration(timeout_s),
                )


def log_transition(
    before: PolicyState, after: PolicyState, name: str, engaged: Collection[str] = ()
) -> None:
    """`engaged`: the watchdogs whose decisions engaged a latched actuator."""
    if before.status is not after.status:
        level = logging.INFO if after.status is Status.OK else logging.WARNING
        log.log(
            level,
            "watchdog=%s status=%s (was %s): %s",
            name,
            after.status.name,
            before.status.name,
            after.reason,
        )
    if before.incident is None and after.incident is not None:
        log.warning("watchdog=%s incident=%s opened: %s", name, after.incident.id, after.reason)
    elif before.incident is not None and after.incident is None:
        latched = "; engaged actuators stay latched" if name in engaged else ""
        log.info("watchdog=%s incident=%s cleared%s", name, before.incident.id, latched)

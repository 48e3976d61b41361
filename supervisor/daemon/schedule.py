"""When things run: one APScheduler job per watchdog plus housekeeping, and deadline re-arming.

Each job has max_instances=1, coalesce and an explicit misfire grace. A watchdog whose
verdicts carry a deadline (the moment an age crosses its next threshold) is re-armed to run
at that moment rather than at its next interval, so detection lands within milliseconds of
the threshold. That run is a deadline run (`is_deadline_run`: the watchdog may re-read only
what came due), and the regular run it displaced is put back afterwards, so that the
interval rhythm, and with it a full read every interval, goes on. A deadline that would fall
while the regular run is still reading goes first too, and the regular run follows it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from supervisor.clock import AGREE_S
from supervisor.constants import HOUSEKEEPING_INTERVAL_S, MISFIRE_GRACE_S
from supervisor.model import Verdicts
from supervisor.publish.metrics import Metrics

log = logging.getLogger("supervisor")

HOUSEKEEPING_JOB = "_housekeeping"
MIN_RESCHEDULE_S = 0.01  # never re-arm a job closer than this: it must have finished first
# A deadline within this many regular-run durations after the regular run's start goes first:
# waiting behind a full read of 100,000 instruments (~0.1 s) would make detection that late.
REGULAR_RUN_MARGIN = 1.5
CLOCK_WATCH_S = 0.5
# A step of the system clock this large moves a job planned on it by as much: re-plan. Even a
# boot-time NTP step of 0.4 s would otherwise hold a deadline run back by that much.
REPLAN_STEP_S = 10 * AGREE_S

WatchdogJob = Callable[[str], Awaitable[None]]
HousekeepingJob = Callable[[], Awaitable[None]]


class Schedule:
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self.scheduler: AsyncIOScheduler | None = None
        # Watchdog -> the regular run that a deadline run was brought forward from.
        self._displaced: dict[str, datetime] = {}
        self._regular_s: dict[str, float] = {}  # watchdog -> how long its last regular run took

    def start(
        self,
        intervals: Mapping[str, float],
        run_watchdog: WatchdogJob,
        housekeeping: HousekeepingJob,
    ) -> None:
        """Start with one job per watchdog (name -> interval in seconds)."""
        loop = asyncio.get_running_loop()
        self.scheduler = AsyncIOScheduler(event_loop=loop, timezone=UTC)
        self.scheduler.add_listener(
            self._on_event, EVENT_JOB_ERROR | EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES
        )
        self.replace_jobs(intervals, run_watchdog, housekeeping)
        self.scheduler.start()

    def replace_jobs(
        self,
        intervals: Mapping[str, float],
        run_watchdog: WatchdogJob,
        housekeeping: HousekeepingJob,
    ) -> None:
        """Every job anew, all due now (a reload: removed watchdogs stop, new ones start)."""
        if self.scheduler is None:  # not started (a test driving the parts): start() adds them
            return
        self.scheduler.remove_all_jobs()
        self._displaced.clear()
        now = datetime.now(UTC)
        for name, interval_s in intervals.items():
            self._add(run_watchdog, name, interval_s, now, [name])
        self._add(housekeeping, HOUSEKEEPING_JOB, HOUSEKEEPING_INTERVAL_S, now, [])

    def _add(
        self,
        func: Callable[..., Any],
        job_id: str,
        interval_s: float,
        first: datetime,
        args: list[str],
    ) -> None:
        assert self.scheduler is not None
        self.scheduler.add_job(
            func,
            IntervalTrigger(seconds=interval_s, timezone=UTC),
            args=args,
            id=job_id,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=MISFIRE_GRACE_S,
            next_run_time=first,
        )

    def is_deadline_run(self, name: str) -> bool:
        """Whether the run of `name` starting now was brought forward to a deadline."""
        return name in self._displaced

    def rearm(self, name: str, verdicts: Verdicts, now: float, took_s: float) -> float | None:
        """Move the next run to the earliest deadline if it comes before the next regular
        run would have finished (a regular run takes as long as the last one, `took_s`, with
        a margin): the deadline run goes first, reading only what came due, and the regular
        run follows it. Return when the watchdog runs next (None if it is not scheduled).
        `now` (the time of this call, not the run's start) and the deadlines are on the
        daemon's clock; APScheduler plans on the system clock, so only the delay from now
        crosses over."""
        displaced = self._displaced.pop(name, None)
        if displaced is None:
            self._regular_s[name] = took_s
        job = self.scheduler.get_job(name) if self.scheduler else None
        if job is None or job.next_run_time is None:
            return None
        system_now = datetime.now(UTC)
        next_run: datetime = job.next_run_time
        if displaced is not None and displaced < next_run:
            # After a deadline run the trigger counts a whole interval from it: back to the
            # regular run instead, or to now if that is already past.
            next_run = max(displaced, system_now + timedelta(seconds=MIN_RESCHEDULE_S))
            job.modify(next_run_time=next_run)
        next_in_s = (next_run - system_now).total_seconds()
        if verdicts.earliest_deadline is not None:
            deadline_in_s = max(verdicts.earliest_deadline - now, MIN_RESCHEDULE_S)
            # A regular run whose time has come is not put off again: deadlines coming one
            # after another must not starve the full reads.
            overdue = displaced is not None and displaced <= system_now
            busy_s = 0.0 if overdue else self._busy_s(name)
            if deadline_in_s < next_in_s + busy_s:
                self._displaced[name] = next_run
                job.modify(next_run_time=system_now + timedelta(seconds=deadline_in_s))
                next_in_s = deadline_in_s
        return now + next_in_s

    def _busy_s(self, name: str) -> float:
        """How long the next regular run may read, by the last one, with a margin."""
        return REGULAR_RUN_MARGIN * self._regular_s.get(name, 0.0) + MIN_RESCHEDULE_S

    async def follow_clock_steps(self, replan: Callable[[], None]) -> None:
        """APScheduler plans on the system clock: stepped back an hour, it would sleep until
        the old time comes round again (an hour without checks); stepped forward, it skips
        runs. Re-plan every job from now whenever the system clock steps."""
        last_wall, last_mono = time.time(), time.monotonic()
        while True:
            await asyncio.sleep(CLOCK_WATCH_S)
            wall, mono = time.time(), time.monotonic()
            step_s = (wall - last_wall) - (mono - last_mono)
            if abs(step_s) > REPLAN_STEP_S:
                log.warning("system clock stepped by %+.3fs: re-planning every job", step_s)
                replan()
            last_wall, last_mono = wall, mono

    def pause(self) -> None:
        """No new runs from now on; runs in flight go on (the shutdown's first phase)."""
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.pause()

    def stop(self) -> None:
        """Stop the scheduler; its executor cancels whatever job still runs, so wait first."""
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=False)

    def _on_event(self, event: Any) -> None:
        name = {EVENT_JOB_ERROR: "error", EVENT_JOB_MISSED: "missed"}.get(
            event.code, "max_instances"
        )
        self.metrics.scheduler_events.labels(event=name).inc()
        if event.job_id != HOUSEKEEPING_JOB or name == "error":
            log.warning("scheduler: job=%s %s", event.job_id, name)

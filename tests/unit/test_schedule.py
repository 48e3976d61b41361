"""Schedule.rearm on a real (paused) APScheduler: a deadline brings the next run forward and
marks it a deadline run; after it, the regular run it displaced is put back."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import anyio
import pytest
from prometheus_client import CollectorRegistry

from supervisor.daemon.schedule import MIN_RESCHEDULE_S, Schedule
from supervisor.kinds import kind_gauges
from supervisor.model import Status, Verdict, Verdicts
from supervisor.publish.metrics import Metrics

pytestmark = pytest.mark.anyio


async def nothing(*_args: object) -> None:
    """A job that does nothing: the test moves the schedule by hand."""


@pytest.fixture
async def schedule() -> AsyncIterator[Schedule]:
    schedule = Schedule(Metrics(CollectorRegistry(), kind_gauges=kind_gauges()))
    schedule.start({"w": 1.0}, nothing, nothing)
    schedule.pause()
    yield schedule
    schedule.stop()


def due_at(deadline: float | None) -> Verdicts:
    return Verdicts.of([Verdict("w", "SPX", Status.OK, "fine", deadline=deadline)])


def next_run(schedule: Schedule) -> datetime:
    assert schedule.scheduler is not None
    job = schedule.scheduler.get_job("w")
    assert job is not None and job.next_run_time is not None
    return job.next_run_time  # type: ignore[no-any-return]


def set_next_run(schedule: Schedule, when: datetime) -> None:
    assert schedule.scheduler is not None
    schedule.scheduler.get_job("w").modify(next_run_time=when)


async def test_a_deadline_run_and_then_the_regular_run_it_displaced(schedule: Schedule) -> None:
    regular = datetime.now(UTC) + timedelta(seconds=0.9)
    set_next_run(schedule, regular)
    now = time.time()
    assert schedule.rearm("w", due_at(now + 0.3), now, 0.001) == pytest.approx(now + 0.3, abs=0.01)
    assert schedule.is_deadline_run("w")
    assert abs((next_run(schedule) - regular).total_seconds() + 0.6) < 0.05

    # The deadline run happened; the trigger would count a whole interval from it.
    set_next_run(schedule, regular + timedelta(seconds=0.3))
    schedule.rearm("w", due_at(None), time.time(), 0.001)
    assert not schedule.is_deadline_run("w")
    assert next_run(schedule) == regular


async def test_a_deadline_after_the_regular_run_changes_nothing(schedule: Schedule) -> None:
    regular = datetime.now(UTC) + timedelta(seconds=0.9)
    set_next_run(schedule, regular)
    now = time.time()
    schedule.rearm("w", due_at(now + 5), now, 0.001)
    assert not schedule.is_deadline_run("w")
    assert next_run(schedule) == regular


async def test_a_reload_forgets_deadline_runs(schedule: Schedule) -> None:
    now = time.time()
    set_next_run(schedule, datetime.now(UTC) + timedelta(seconds=0.9))
    schedule.rearm("w", due_at(now + 0.2), now, 0.001)
    assert schedule.is_deadline_run("w")
    schedule.replace_jobs({"w": 1.0}, nothing, nothing)
    assert not schedule.is_deadline_run("w")


async def test_a_deadline_while_the_regular_run_would_still_read_goes_first(
    schedule: Schedule,
) -> None:
    regular = datetime.now(UTC) + timedelta(seconds=0.05)
    set_next_run(schedule, regular)
    now = time.time()
    # The last regular run took 200 ms: a deadline 50 ms after the next one starts would
    # wait behind it; it runs first, and the regular run right after it.
    assert schedule.rearm("w", due_at(now + 0.1), now, 0.2) == pytest.approx(now + 0.1, abs=0.01)
    assert schedule.is_deadline_run("w")
    await anyio.sleep(0.1)  # the deadline run: the regular run's time has passed meanwhile
    set_next_run(schedule, regular + timedelta(seconds=1.05))  # what the trigger would say
    schedule.rearm("w", due_at(None), time.time(), 0.001)
    assert next_run(schedule) <= datetime.now(UTC) + timedelta(seconds=MIN_RESCHEDULE_S)


async def test_a_regular_run_is_put_off_for_a_deadline_once_at_most(schedule: Schedule) -> None:
    regular = datetime.now(UTC) + timedelta(seconds=0.05)
    set_next_run(schedule, regular)
    now = time.time()
    schedule.rearm("w", due_at(now + 0.1), now, 0.2)  # put off once
    await anyio.sleep(0.1)
    set_next_run(schedule, regular + timedelta(seconds=1.05))
    now = time.time()
    schedule.rearm("w", due_at(now + 0.02), now, 0.001)  # another deadline right behind
    assert not schedule.is_deadline_run("w")  # the overdue regular run goes now
    assert next_run(schedule) <= datetime.now(UTC) + timedelta(seconds=MIN_RESCHEDULE_S)

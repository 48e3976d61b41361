"""The daemon's logic in-process, against the real test Redis, with an injected clock: one
watchdog cycle, a housekeeping pass, a reconcile pass and reloads, each called directly.

What only a process shows (signals, sd_notify, exit codes) is in test_daemon.py.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from supervisor.config.loading import load_config
from supervisor.daemon import Supervisor
from supervisor.daemon import cycle as cycle_module
from supervisor.keys import engaged_key, reset_key
from supervisor.kinds import kind_gauges
from supervisor.model import Decision, Health, Status, TradingState
from supervisor.pending import Order, PendingActions, order
from supervisor.publish.metrics import Metrics
from supervisor.watchdogs.base import Evaluation, run_check
from testbed.config_blocks import BREAKER, supervisor_tables, ticks_watchdog
from testbed.loop_turns import LoopTurns
from testbed.redis_server import RedisServer

pytestmark = pytest.mark.anyio


def spx_watchdog(on_breach: str = "breaker", name: str = "w1") -> str:
    """One tick watchdog on SPX: warn after 5 s, breach after 10 s, clear after 2 checks."""
    return ticks_watchdog(
        [on_breach],
        name=name,
        key="ticks:{instrument}",
        instruments=["SPX"],
        warn="5s",
        breach="10s",
        interval="1s",
        trip_after=None,
        extra="clear_after = 2",
    )


class Clock:
    """Wall-clock time the test moves by hand."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def write(
    path: Path,
    redis_url: str,
    namespace: str = "sup",
    watchdog: str = "w1",
    dry_run: bool = False,
    breaker_extra: str = "",
    extra: str = "",
) -> Path:
    tables = supervisor_tables(
        path.parent / "state",
        redis_url,
        instance_id="sup-logic",
        namespace=namespace,
        dry_run=dry_run,
    )
    breaker = BREAKER + breaker_extra + "\n"
    text = tables + breaker + spx_watchdog(name=watchdog) + extra + "\n"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def config_path(tmp_path: Path, redis_server: RedisServer, request: pytest.FixtureRequest) -> Path:
    """The config; a test changes it with @pytest.mark.config(dry_run=True, ...)."""
    marker = request.node.get_closest_marker("config")
    options = marker.kwargs if marker else {}
    return write(tmp_path / "supervisor.toml", redis_server.url, **options)


@pytest.fixture
async def supervisor(config_path: Path, clock: Clock, redis: Redis) -> AsyncIterator[Supervisor]:
    metrics = Metrics(CollectorRegistry(), kind_gauges=kind_gauges())
    daemon = Supervisor(load_config(config_path), config_path, metrics=metrics, clock=clock)
    yield daemon
    await settle(daemon)
    await daemon.context.assembly.close()
    daemon.context.notifier.close()


async def settle(daemon: Supervisor) -> None:
    """Wait for the actions, publications and audit records started in the background, and
    for the state files (written by a worker thread) to hold what they were handed."""
    for _ in range(50):
        pending = [task for task in daemon.context.tasks.in_flight if not task.done()]
        if not pending:
            break
        await asyncio.wait(pending, timeout=2)
    await daemon.engagements.flush()


async def stale_tick(redis: Redis, clock: Clock, age_s: float = 30.0) -> None:
    await redis.set("ticks:SPX", f"{clock.now - age_s:.3f}")


async def trip_breaker(supervisor: Supervisor, redis: Redis, clock: Clock) -> None:
    """A stale tick and one cycle: w1 breaches and the breaker is engaged."""
    await stale_tick(redis, clock)
    await supervisor.cycle.run("w1")
    await settle(supervisor)
    assert "breaker" in supervisor.context.runtime.engaged


async def test_a_cycle_judges_decides_acts_and_publishes(
    supervisor: Supervisor, redis: Redis, clock: Clock
) -> None:
    await redis.set("ticks:SPX", f"{clock.now - 1:.3f}")
    run = await supervisor.cycle.run("w1")
    assert run is not None and run.status is Status.OK

    await stale_tick(redis, clock)
    run = await supervisor.cycle.run("w1")
    await settle(supervisor)

    assert run is not None and run.status is Status.BREACH
    assert "breaker" in supervisor.context.runtime.engaged
    breaker = json.loads(await redis.get("circuit_breaker:state") or "null")
    assert breaker["state"] == "TRIPPED"
    assert breaker["watchdog"] == "w1"
    assert (await redis.hget("sup:watchdog:w1", "status")) == b"BREACH"
    assert (await redis.hget("sup:state", "trading_state")) == b"REDUCE_ONLY"


async def test_a_cycle_of_a_removed_watchdog_does_nothing(supervisor: Supervisor) -> None:
    assert await supervisor.cycle.run("not-configured") is None
    assert supervisor.context.runtime.runs == {}


async def test_housekeeping_publishes_heartbeat_and_holds_keepalive_for_late_watchdogs(
    supervisor: Supervisor, redis: Redis, clock: Clock
) -> None:
    await redis.set("ticks:SPX", f"{clock.now:.3f}")
    await supervisor.cycle.run("w1")
    await supervisor.housekeeping.run()
    await settle(supervisor)
    assert await redis.get("sup:heartbeat") is not None
    assert (await redis.hget("sup:state", "trading_state")) == b"ACTIVE"
    assert supervisor.housekeeping.late_watchdogs(clock.now) == []

    clock.now += 10  # w1 (interval 1 s) has not run for 10 s: a wedged scheduler
    assert supervisor.housekeeping.late_watchdogs(clock.now) == ["w1"]


async def test_reconcile_applies_a_reset_and_relatches_a_lost_breaker(
    supervisor: Supervisor, redis: Redis, clock: Clock
) -> None:
    await trip_breaker(supervisor, redis, clock)

    # Lost without a reset (a flushed Redis): the latch engages it again.
    await redis.delete("circuit_breaker:state", engaged_key("sup"))
    await supervisor.reconciler.refresh()
    await settle(supervisor)
    breaker = json.loads(await redis.get("circuit_breaker:state") or "null")
    assert breaker["state"] == "TRIPPED"
    assert breaker["watchdog"] == "latch"

    # A recorded reset releases it for good.
    await supervisor.context.assembly.latches.record_reset(["breaker"])
    await redis.set("circuit_breaker:state", json.dumps({"state": "OPEN"}))
    await supervisor.reconciler.refresh()
    await settle(supervisor)
    assert "breaker" not in supervisor.context.runtime.engaged
    assert supervisor.display.refresh().trading_state is TradingState.ACTIVE


async def test_reload_that_renames_a_watchdog_forgets_the_old_one(
    supervisor: Supervisor, redis: Redis, clock: Clock, config_path: Path, redis_server: RedisServer
) -> None:
    await stale_tick(redis, clock, age_s=7)  # WARN: named in STATUS, nothing engaged
    await supervisor.cycle.run("w1")
    await settle(supervisor)
    assert "w1 WARN" in supervisor.display.refresh().reason
    assert await redis.exists("sup:watchdog:w1")

    write(config_path, redis_server.url, watchdog="w2")
    assert await supervisor.reload()
    await settle(supervisor)

    runtime = supervisor.context.runtime
    assert set(runtime.policy) == set(runtime.runs) == set()
    assert list(supervisor.context.assembly.watchdogs) == ["w2"]
    assert "w1" not in supervisor.display.refresh().reason
    assert not await redis.exists("sup:watchdog:w1")
    metrics = supervisor.context.metrics.registry
    assert metrics.get_sample_value("supervisor_watchdog_status", {"watchdog": "w1"}) is None
    labels = {"watchdog": "w1", "instrument": "SPX"}
    assert metrics.get_sample_value("supervisor_tick_age_seconds", labels) is None

    await supervisor.cycle.run("w2")
    assert set(runtime.policy) == {"w2"}
    assert "w2 WARN" in supervisor.display.refresh().reason
    assert "w1" not in supervisor.display.refresh().reason


async def test_reload_that_changes_the_namespace_is_refused_whole(
    supervisor: Supervisor, redis: Redis, clock: Clock, config_path: Path, redis_server: RedisServer
) -> None:
    before = supervisor.context.assembly
    write(config_path, redis_server.url, namespace="other", watchdog="w2")

    assert not await supervisor.reload()

    assert supervisor.context.assembly is before  # nothing applied, not even the rename
    assert list(before.watchdogs) == ["w1"]
    await stale_tick(redis, clock)
    await supervisor.cycle.run("w1")
    await settle(supervisor)
    assert await redis.exists("sup:watchdog:w1")
    assert not await redis.exists("other:watchdog:w1", "other:watchdog:w2")
    assert await redis.hexists(engaged_key("sup"), "breaker")


async def test_reload_of_a_broken_file_keeps_the_running_config(
    supervisor: Supervisor, config_path: Path
) -> None:
    before = supervisor.context.assembly
    config_path.write_text("[[watchdogs]]\nname = 'x'\n", encoding="utf-8")
    assert not await supervisor.reload()
    assert supervisor.context.assembly is before


@pytest.mark.config(dry_run=True)
async def test_dry_run_says_would_and_never_acts(
    supervisor: Supervisor, redis: Redis, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    await stale_tick(redis, clock)
    run = await supervisor.cycle.run("w1")
    await settle(supervisor)
    assert run is not None and run.status is Status.BREACH
    assert "dry_run: would engage breaker (REDUCE_ONLY)" in caplog.text
    assert await redis.get("circuit_breaker:state") is None
    assert supervisor.context.runtime.engaged == {}


@pytest.mark.config(breaker_extra='auto_reset_after = "60s"')
async def test_auto_reset_only_after_its_time_and_once_the_watchdog_cleared(
    supervisor: Supervisor, redis: Redis, clock: Clock
) -> None:
    await trip_breaker(supervisor, redis, clock)

    clock.now += 61  # its time has come, but the watchdog still breaches
    await stale_tick(redis, clock)
    await supervisor.cycle.run("w1")
    await supervisor.reconciler.refresh()
    assert "breaker" in supervisor.context.runtime.engaged

    await redis.set("ticks:SPX", f"{clock.now:.3f}")
    await supervisor.cycle.run("w1")  # one OK of clear_after = 2: not cleared yet
    await supervisor.reconciler.refresh()
    assert "breaker" in supervisor.context.runtime.engaged

    await supervisor.cycle.run("w1")
    await supervisor.reconciler.refresh()
    await settle(supervisor)
    assert "breaker" not in supervisor.context.runtime.engaged
    breaker = json.loads(await redis.get("circuit_breaker:state") or "null")
    assert breaker["state"] == "OPEN"
    assert await redis.hexists(reset_key("sup"), "breaker")


async def test_housekeeping_writes_back_engagements_redis_lost(
    supervisor: Supervisor, redis: Redis, clock: Clock
) -> None:
    await stale_tick(redis, clock)
    await supervisor.cycle.run("w1")
    await settle(supervisor)
    assert await redis.hexists(engaged_key("sup"), "breaker")

    await redis.flushall()
    await supervisor.housekeeping.run()
    await settle(supervisor)
    assert await redis.hexists(engaged_key("sup"), "breaker")
    assert (await redis.hget("sup:state", "trading_state")) == b"REDUCE_ONLY"


async def test_a_reset_after_redis_lost_its_counter_still_releases(
    supervisor: Supervisor, redis: Redis, clock: Clock
) -> None:
    """Redis restarted empty loses `{ns}:seq` with the engagements. Written back, they raise
    the counter to their numbers again, so the operator's next reset comes after them."""
    await stale_tick(redis, clock)
    await supervisor.cycle.run("w1")
    await settle(supervisor)
    await redis.set("ticks:SPX", f"{clock.now:.3f}")
    await redis.flushall()
    await supervisor.housekeeping.run()  # writes the breaker's latch back
    await settle(supervisor)
    assert await redis.hexists(engaged_key("sup"), "breaker")

    await supervisor.context.assembly.latches.record_reset(["breaker"])  # as `reset` does
    await redis.set("circuit_breaker:state", json.dumps({"state": "OPEN"}))
    for _ in range(2):
        await supervisor.reconciler.refresh()
        await settle(supervisor)
    assert "breaker" not in supervisor.context.runtime.engaged
    breaker = json.loads(await redis.get("circuit_breaker:state") or "{}")
    assert breaker["state"] == "OPEN"


def interrupted_trip(clock: Clock, after_reset: int | None) -> Order:
    """What a daemon killed while tripping the breaker leaves in state_dir."""
    decision = Decision("w1", Status.BREACH, ("breaker",), "SPX age 30s > 10s", "inc-7", clock.now)
    return order("breaker", decision, after_reset)


def left_by_a_crash(daemon: Supervisor, interrupted: Order) -> None:
    """The pending file a daemon killed mid-action left (written as that daemon would)."""
    pending = PendingActions(daemon.context.assembly.pending.path.parent)
    pending.add(interrupted)
    pending.save()


async def test_an_action_a_crash_interrupted_is_carried_out_on_restart(
    supervisor: Supervisor, redis: Redis, clock: Clock
) -> None:
    """The condition cleared while the daemon was down: the order still stands, and the
    watchdog's incident goes on under the same id (the same Idempotency-Key)."""
    left_by_a_crash(supervisor, interrupted_trip(clock, after_reset=0))
    await redis.set("ticks:SPX", f"{clock.now:.3f}")  # healthy again
    await supervisor.reconciler.restore()
    await settle(supervisor)
    breaker = json.loads(await redis.get("circuit_breaker:state") or "null")
    assert breaker["state"] == "TRIPPED"
    assert "breaker" in supervisor.context.runtime.engaged
    incident = supervisor.context.runtime.policy["w1"].incident
    assert incident is not None and incident.id == "inc-7"
    assert PendingActions(supervisor.context.assembly.pending.path.parent).load() == []


async def test_a_reset_after_an_interrupted_action_voids_it(
    supervisor: Supervisor, redis: Redis, clock: Clock
) -> None:
    left_by_a_crash(supervisor, interrupted_trip(clock, after_reset=0))
    await supervisor.context.assembly.latches.record_reset(["breaker"])  # numbered 1 > 0
    await supervisor.reconciler.restore()
    await settle(supervisor)
    assert await redis.get("circuit_breaker:state") is None
    assert "breaker" not in supervisor.context.runtime.engaged
    assert PendingActions(supervisor.context.assembly.pending.path.parent).load() == []


async def test_a_disk_that_does_not_answer_holds_neither_the_loop_nor_the_action(
    supervisor: Supervisor,
    redis: Redis,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Every fsync waits until the test lets it go (a disk another process is flushing: 2 s
    on a loaded CI machine). The breaker still trips, after ORDER_ON_DISK_BUDGET_S, while the
    loop turns; once the disk answers, the latch is in engaged.json and no order is left."""
    disk_answers = threading.Event()
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        disk_answers.wait(30)
        real_fsync(fd)

    monkeypatch.setattr("supervisor.snapshot_file.os.fsync", fsync)
    async with LoopTurns() as turns:
        started = time.monotonic()
        await stale_tick(redis, clock)
        await supervisor.cycle.run("w1")
        with anyio.fail_after(10):
            while json.loads(await redis.get("circuit_breaker:state") or "{}").get("state") is None:
                await asyncio.sleep(0.01)
        took_s = time.monotonic() - started
    assert not disk_answers.is_set()  # tripped while the disk is stuck
    assert turns.count >= turns.expected(took_s), (turns.count, took_s)  # the loop turning
    said = "its order is not on disk after 0.05s (a slow disk or host): acting anyway"
    assert said in caplog.text

    flushing = time.monotonic()
    await supervisor.engagements.flush(timeout_s=0.2)  # a shutdown now: the exit is not held
    assert time.monotonic() - flushing < 5
    assert "not written within 0.2s (the disk does not answer)" in caplog.text

    disk_answers.set()
    await settle(supervisor)
    assert "breaker" in supervisor.context.assembly.latches.load_file()
    assert PendingActions(supervisor.context.assembly.pending.path.parent).load() == []


async def test_an_action_is_pending_until_it_succeeded(
    supervisor: Supervisor, redis: Redis, clock: Clock
) -> None:
    pending = PendingActions(supervisor.context.assembly.pending.path.parent)
    await stale_tick(redis, clock)
    await redis.hset("circuit_breaker:state", "state", "OPEN")  # wrong type: the trip fails
    await supervisor.cycle.run("w1")
    await settle(supervisor)
    assert [o.actuator for o in pending.load()] == ["breaker"]

    await redis.delete("circuit_breaker:state")
    await supervisor.cycle.run("w1")  # the failed action is ordered again, and succeeds
    await settle(supervisor)
    assert "breaker" in supervisor.context.runtime.engaged
    assert pending.load() == []


async def test_an_unwritable_state_dir_degrades_health_until_it_is_writable(
    supervisor: Supervisor, redis: Redis
) -> None:
    state_dir = supervisor.context.assembly.settings.supervisor.state_dir
    state_dir.write_text("a file where the directory should be")  # root ignores chmod
    await supervisor.housekeeping.run()
    await settle(supervisor)
    summary = supervisor.display.refresh()
    assert summary.health is Health.DEGRADED
    assert f"cannot write {state_dir}" in summary.status_line()

    state_dir.unlink()
    await supervisor.housekeeping.run()
    await settle(supervisor)
    assert supervisor.display.refresh().health is Health.OK


async def test_latches_made_while_state_dir_was_unwritable_are_saved_once_it_is(
    supervisor: Supervisor, redis: Redis, clock: Clock
) -> None:
    """A trip while the disk is full latches in memory and Redis only; the file must catch
    up when the disk does, not at the next trip, or a restart that also finds Redis empty
    would re-arm trading."""
    state_dir = supervisor.context.assembly.settings.supervisor.state_dir
    state_dir.write_text("a file where the directory should be")
    await stale_tick(redis, clock)
    await supervisor.cycle.run("w1")
    await settle(supervisor)
    assert "breaker" in supervisor.context.runtime.engaged

    state_dir.unlink()
    await supervisor.housekeeping.run()
    await settle(supervisor)
    assert "breaker" in supervisor.context.assembly.latches.load_file()


async def test_keepalive_does_not_wait_for_redis(
    supervisor: Supervisor, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Housekeeping's keepalive returns at once even while the Redis pass hangs."""
    sent: list[str] = []
    monkeypatch.setattr(supervisor.context.notifier, "watchdog", lambda: sent.append("WATCHDOG=1"))
    hang = asyncio.Event()

    async def frozen() -> None:
        await hang.wait()

    monkeypatch.setattr(supervisor.reconciler, "refresh", frozen)
    supervisor.context.runtime.runs.clear()
    for _ in range(3):
        with anyio.fail_after(0.5):
            await supervisor.housekeeping.run()
    assert sent == ["WATCHDOG=1"] * 3
    hang.set()


ORPHAN_LOCKS = """
[[watchdogs]]
name = "locks"
kind = "lock_ttl"
keys = ["stream:lock"]
release_orphans = true
"""


@pytest.mark.config(extra=ORPHAN_LOCKS)
async def test_an_orphaned_lock_is_released_by_the_daemon_and_audited(
    supervisor: Supervisor, redis: Redis
) -> None:
    await redis.set("stream:lock", "owner-0123456789")  # no expiry: an orphan
    run = await supervisor.cycle.run("locks")
    await settle(supervisor)
    assert run is not None and run.status is Status.BREACH
    assert not await redis.exists("stream:lock")
    entries: list[tuple[bytes, dict[bytes, bytes]]] = await redis.xrange("sup:events")  # type: ignore[assignment]
    (released,) = [e for _id, e in entries if e.get(b"actuator") == b"release_orphan"]
    assert released[b"outcome"] == b"released"
    assert released[b"watchdog"] == b"locks"
    assert b"owner-01234" in released[b"reason"]
    assert b"owner-0123456789" not in released[b"reason"]  # shortened: owners may be tokens


@pytest.mark.config(extra=ORPHAN_LOCKS, dry_run=True)
async def test_dry_run_never_releases_an_orphaned_lock(
    supervisor: Supervisor, redis: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    await redis.set("stream:lock", "owner-0123456789")
    await supervisor.cycle.run("locks")
    await settle(supervisor)
    assert await redis.exists("stream:lock")
    assert "dry_run: would release_orphan key=stream:lock" in caplog.text


async def test_a_reset_from_a_clock_ahead_never_voids_a_later_engagement(
    supervisor: Supervisor, redis: Redis, clock: Clock
) -> None:
    """Resets and engagements are ordered by Redis' counter, not by anybody's clock."""
    store = supervisor.context.assembly.latches
    clock.now += 600  # as if the operator's reset came from a laptop 10 minutes ahead...
    await store.record_reset(["breaker"])
    clock.now -= 600  # ...and the daemon's clock is right
    await stale_tick(redis, clock)
    await supervisor.cycle.run("w1")
    await settle(supervisor)
    for _ in range(3):
        await supervisor.reconciler.refresh()
        await settle(supervisor)
    assert "breaker" in supervisor.context.runtime.engaged
    assert supervisor.display.refresh().trading_state is TradingState.REDUCE_ONLY

    # A reset after the engagement releases it, whatever the clocks say.
    clock.now -= 3600
    await store.record_reset(["breaker"])
    await redis.set("circuit_breaker:state", json.dumps({"state": "OPEN"}))
    await supervisor.reconciler.refresh()
    assert "breaker" not in supervisor.context.runtime.engaged


def too_many_to_read(count: int = 20_000) -> str:
    """A watchdog that cannot read all it watches within its timeout."""
    instruments = ", ".join(f'"I{index}"' for index in range(count))
    return f"""
[[watchdogs]]
name = "slow"
kind = "tick_freshness"
key = "ticks:{{instrument}}"
instruments = [{instruments}]
breach = "10s"
interval = "1s"
timeout = "10ms"
"""


async def test_a_check_cut_off_run_after_run_degrades_health_and_says_so(
    tmp_path: Path, redis_server: RedisServer, clock: Clock, redis: Redis
) -> None:
    path = write(tmp_path / "supervisor.toml", redis_server.url, extra=too_many_to_read())
    metrics = Metrics(CollectorRegistry(), kind_gauges=kind_gauges())
    daemon = Supervisor(load_config(path), path, metrics=metrics, clock=clock)
    try:
        for _ in range(2):
            await daemon.cycle.run("slow")
        assert daemon.display.refresh().health is Health.OK  # two: not yet
        run = await daemon.cycle.run("slow")
        assert run is not None and run.status is Status.UNKNOWN
        summary = daemon.display.refresh()
        assert summary.health is Health.DEGRADED
        assert "watchdog slow: checks cut off after 10ms" in summary.status_line()
        cut_offs = metrics.registry.get_sample_value(
            "supervisor_watchdog_check_cut_offs_total", {"watchdog": "slow"}
        )
        assert cut_offs == 3
    finally:
        await settle(daemon)
        await daemon.context.assembly.close()
        daemon.context.notifier.close()


async def idle_job(*_args: object) -> None:
    """A scheduled job that does nothing: the test runs the cycle itself."""


async def test_a_deadline_re_run_is_armed_from_the_end_of_the_run(
    supervisor: Supervisor, redis: Redis, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run that takes a while (here 0.2 s on the daemon's clock, as 100,000 instruments
    do) arms the next deadline from its end: armed from its start, the re-run would come
    that much late."""
    real_check = run_check

    async def slow_check(*args: Any, **kwargs: Any) -> Evaluation:
        evaluation = await real_check(*args, **kwargs)
        clock.now += 0.2
        return evaluation

    monkeypatch.setattr(cycle_module, "run_check", slow_check)
    schedule = supervisor.schedule
    schedule.start({"w1": 1.0}, idle_job, idle_job)
    try:
        schedule.pause()
        assert schedule.scheduler is not None
        job = schedule.scheduler.get_job("w1")
        job.modify(next_run_time=datetime.now(UTC) + timedelta(seconds=5))
        await stale_tick(redis, clock, age_s=4.5)  # warns (5 s) 0.5 s after the run starts
        await supervisor.cycle.run("w1")
        delay_s = (job.next_run_time - datetime.now(UTC)).total_seconds()
        assert 0 < delay_s < 0.4  # 0.3 s after the run's end, not 0.5 s
        assert schedule.is_deadline_run("w1")
    finally:
        schedule.stop()


async def test_the_journal_and_the_trail_say_the_decision_before_its_action(
    supervisor: Supervisor, redis: Redis, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """The breaker trips within the dispatch wait: its records must still follow the
    decision's, in the journal and in `{ns}:events`."""
    caplog.set_level(logging.INFO, "supervisor")
    await trip_breaker(supervisor, redis, clock)
    lines = [r.getMessage() for r in caplog.records]
    decision = next(i for i, line in enumerate(lines) if line.startswith("decision "))
    actions = [i for i, line in enumerate(lines) if line.startswith("action ")]
    assert actions and decision < min(actions), lines
    events = await redis.xrange("sup:events") or []
    kinds = [(fields or {}).get(b"kind") for _id, fields in events]
    assert kinds.index(b"decision") < kinds.index(b"action"), kinds


@pytest.mark.config(dry_run=True)
async def test_an_incident_that_engaged_nothing_is_not_said_to_keep_anything_latched(
    supervisor: Supervisor, redis: Redis, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "supervisor")
    await stale_tick(redis, clock)
    await supervisor.cycle.run("w1")
    for _ in range(2):  # clear_after = 2
        clock.now += 1
        await redis.set("ticks:SPX", f"{clock.now:.3f}")
        await supervisor.cycle.run("w1")
    await settle(supervisor)
    cleared = [r.getMessage() for r in caplog.records if "cleared" in r.getMessage()]
    assert len(cleared) == 1 and cleared[0].endswith("cleared"), cleared


async def test_an_incident_that_engaged_the_breaker_says_it_stays_latched(
    supervisor: Supervisor, redis: Redis, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "supervisor")
    await trip_breaker(supervisor, redis, clock)
    for _ in range(2):
        clock.now += 1
        await redis.set("ticks:SPX", f"{clock.now:.3f}")
        await supervisor.cycle.run("w1")
    cleared = [r.getMessage() for r in caplog.records if "cleared" in r.getMessage()]
    assert len(cleared) == 1 and cleared[0].endswith("engaged actuators stay latched")

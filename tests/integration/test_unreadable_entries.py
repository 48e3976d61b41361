"""Issue 16, defects 1-3: one bad value the daemon reads back (a shared order, an engaged
entry, a state file) never disarms it. In-process, against the real test Redis, with the
clocks of test_ha_logic.py and test_daemon_logic.py; each test failed on the main of
2026-12-06 (a traceback, and no trip, no heartbeat, or no start).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from redis import Redis as SyncRedis
from redis.asyncio import Redis

from supervisor.actuators.redis_breaker import breaker_state
from supervisor.config.loading import load_config
from supervisor.daemon import Supervisor
from supervisor.ha.lease import leader_key, token_key
from supervisor.ha.orders import order_key
from supervisor.kinds import kind_gauges
from supervisor.latch import ENGAGED_FILE, engaged_key
from supervisor.pending import PENDING_FILE
from supervisor.publish.metrics import Metrics
from supervisor.stored import SIGHTINGS
from testbed.daemon_process import Daemon, cli, write_config
from testbed.notify_socket import NotifySocket
from testbed.redis_server import RedisServer
from testbed.waiting import wait_until
from tests.integration.test_daemon_logic import Clock, settle, stale_tick, write
from tests.integration.test_ha_logic import (
    Instance,
    build,
    history,
    lease_expires,
    new_stack,
    stale,
)

pytestmark = pytest.mark.anyio

REASON = "operator drill: keys planted by hand"
HUGE = "1" + "0" * 400  # valid JSON, too large for a float: float() raises OverflowError
DEEP = "[" * 100_000 + "]" * 100_000  # valid JSON, too deep: json.loads raises RecursionError


def huge_order(actuator: str = "breaker") -> str:
    decision = {
        "watchdog": "w1",
        "severity": "BREACH",
        "actuators": [actuator],
        "reason": "planted",
        "incident_id": "planted",
        "at": "AT",
    }
    text = json.dumps({"actuator": actuator, "after_reset": None, "decision": decision})
    return text.replace('"AT"', HUGE)


BOGUS_LATCH = '{"level": "HALTED", "reason": "x", "at": ' + HUGE + "}"


def unreadable_count(daemon: Supervisor, store: str) -> float:
    registry = daemon.context.metrics.registry
    return registry.get_sample_value("supervisor_unreadable_entries_total", {"store": store}) or 0


@pytest.fixture(autouse=True)
def fresh_sightings() -> None:
    """Each test counts and says its own sightings (the tally is process-wide)."""
    SIGHTINGS.forget()


@pytest.fixture
async def pair(
    tmp_path: Path, redis_server: RedisServer, redis: Redis
) -> AsyncIterator[tuple[Instance, Instance]]:
    """Two HA instances, "a" leads (as in test_ha_logic.py)."""
    a, b = build(tmp_path, redis_server.url, "a"), build(tmp_path, redis_server.url, "b")
    await new_stack(a, b)
    yield a, b
    for instance in (a, b):
        await settle(instance.daemon)
        await instance.daemon.context.assembly.close()
        instance.daemon.context.notifier.close()


@pytest.fixture
async def supervisor(
    tmp_path: Path, redis_server: RedisServer, redis: Redis
) -> AsyncIterator[tuple[Supervisor, Clock]]:
    """One instance without [ha] (as in test_daemon_logic.py)."""
    path = write(tmp_path / "supervisor.toml", redis_server.url)
    clock = Clock()
    metrics = Metrics(CollectorRegistry(), kind_gauges=kind_gauges())
    daemon = Supervisor(load_config(path), path, metrics=metrics, clock=clock)
    yield daemon, clock
    await settle(daemon)
    await daemon.context.assembly.close()
    daemon.context.notifier.close()


# --- defect 1: one malformed shared order stopped a takeover --------------------------------


async def test_defect_1_a_takeover_trips_despite_an_order_too_large_for_a_float(
    pair: tuple[Instance, Instance], redis: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    _a, b = pair
    await redis.set(order_key("sup", "breaker"), huge_order())
    await stale(redis, b.clock)
    await b.cycle()  # the follower holds its decision back
    await lease_expires(redis)  # the leader is gone
    await b.claim()
    await settle(b.daemon)

    [trip] = await history(redis)
    assert trip["by"] == "b" and trip["fencing_token"] == b.daemon.context.leadership.token
    assert "bug:" not in caplog.text
    assert not await redis.exists(order_key("sup", "breaker"))
    assert await redis.get("sup:unreadable:order:breaker") == huge_order().encode()
    assert unreadable_count(b.daemon, "order") >= 1


async def test_defect_1_a_takeover_trips_despite_an_engaged_entry_too_large_for_a_float(
    pair: tuple[Instance, Instance], redis: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    """Defect 2's entry planted before a takeover: the refresh that starts it read it."""
    _a, b = pair
    await redis.hset(engaged_key("sup"), "bogus", BOGUS_LATCH)
    await stale(redis, b.clock)
    await b.cycle()
    await lease_expires(redis)
    await b.claim()
    await settle(b.daemon)

    [trip] = await history(redis)
    assert trip["by"] == "b"
    assert "bug:" not in caplog.text
    assert (await redis.hget("sup:state", "trading_state")) == b"REDUCE_ONLY"


async def test_garbage_in_the_lease_key_is_set_aside_and_the_follower_takes_over_and_trips(
    pair: tuple[Instance, Instance], redis: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    """Nemesis seeds 7 and 42 (`--faults garbage`): a value no claim writes, without expiry,
    in `{ns}:leader` made every instance a follower of it, for ever: no trip."""
    _a, b = pair
    garbage = huge_order()
    await redis.delete(token_key("sup"))
    await redis.set(leader_key("sup"), garbage)  # the leader's lease overwritten, no expiry
    await stale(redis, b.clock)
    await b.cycle()  # the follower holds its decision back
    await b.claim()
    await settle(b.daemon)

    assert b.daemon.context.leadership.leader == "b"
    [trip] = await history(redis)
    assert trip["by"] == "b" and trip["fencing_token"] == b.daemon.context.leadership.token
    assert await redis.get("sup:unreadable:leader") == garbage.encode()
    assert unreadable_count(b.daemon, "leader") >= 1
    assert "bug:" not in caplog.text


async def test_a_takeover_takes_up_held_decisions_when_an_earlier_step_fails_on_a_bug(
    pair: tuple[Instance, Instance], redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The steps of a takeover fail alone: a bug in reconciling or in adopting the old
    leader's orders is logged and counted, and what was held back is still engaged."""
    _a, b = pair

    async def broken() -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(b.daemon.reconciler, "refresh", broken)
    monkeypatch.setattr(b.daemon.acting, "adopt_orders", broken)
    await stale(redis, b.clock)
    await b.cycle()
    await lease_expires(redis)
    await b.claim()
    await settle(b.daemon)

    [trip] = await history(redis)
    assert trip["by"] == "b"
    registry = b.daemon.context.metrics.registry
    for step in ("take_over.reconcile", "take_over.adopt_orders"):
        assert registry.get_sample_value("supervisor_pass_step_failures_total", {"step": step}) == 1
    assert (
        registry.get_sample_value(
            "supervisor_pass_step_failures_total", {"step": "take_over.take_up_held"}
        )
        == 0
    )


# --- defect 2: one bad {ns}:engaged entry stopped every housekeeping pass -------------------


async def test_defect_2_housekeeping_goes_on_past_an_engaged_entry_too_large_for_a_float(
    supervisor: tuple[Supervisor, Clock], redis: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    daemon, clock = supervisor
    await stale_tick(redis, clock)
    await daemon.cycle.run("w1")  # the breaker trips
    await settle(daemon)
    await redis.hset(engaged_key("sup"), "bogus", BOGUS_LATCH)
    await daemon.context.assembly.latches.record_reset(["breaker"])  # an operator's reset
    await redis.set("circuit_breaker:state", json.dumps({"state": "OPEN"}))
    await redis.set("ticks:SPX", f"{clock.now:.3f}")
    await redis.delete("sup:heartbeat", "sup:state")

    for _ in range(3):  # three passes: the entry is said once, not every second
        await daemon.housekeeping.run()
        await settle(daemon)

    assert await redis.get("sup:heartbeat") is not None
    assert "breaker" not in daemon.context.runtime.engaged  # the reset was noticed
    assert (await redis.hget("sup:state", "trading_state")) == b"ACTIVE"
    assert "bug:" not in caplog.text
    assert caplog.text.count("unreadable engaged entry") == 1
    assert not await redis.hexists(engaged_key("sup"), "bogus")
    assert await redis.hget("sup:unreadable:engaged", "bogus") == BOGUS_LATCH.encode()
    assert unreadable_count(daemon, "engaged") == 1


async def test_a_housekeeping_pass_writes_the_heartbeat_when_a_step_fails_on_a_bug(
    supervisor: tuple[Supervisor, Clock], redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    daemon, clock = supervisor
    replays: list[bool] = []

    async def broken() -> None:
        raise RuntimeError("a bug")

    async def replay() -> int:
        replays.append(True)
        return 0

    monkeypatch.setattr(daemon.reconciler, "refresh", broken)
    monkeypatch.setattr(daemon.context.assembly.audit, "replay", replay)
    await redis.set("ticks:SPX", f"{clock.now:.3f}")
    await daemon.cycle.run("w1")
    await daemon.housekeeping.run()
    await settle(daemon)

    assert await redis.get("sup:heartbeat") is not None
    assert (await redis.hget("sup:state", "trading_state")) == b"ACTIVE"
    assert replays == [True]  # the step after the failing ones ran
    registry = daemon.context.metrics.registry
    failed = {"step": "housekeeping.reconcile"}
    assert registry.get_sample_value("supervisor_pass_step_failures_total", failed) == 1


# --- defect 3: a state file with valid but extreme JSON stopped the daemon at start ---------


@pytest.mark.parametrize(
    ("engaged", "pending"),
    [
        ('{"breaker": {"level": "HALTED", "reason": "x", "at": ' + HUGE + "}}", "[]"),
        ("{}", DEEP),
        ('{"breaker": ' + DEEP + "}", '[{"decision": ' + HUGE + "}]"),
    ],
    ids=["huge-int-latch", "deep-pending", "both"],
)
async def test_defect_3_extreme_state_files_are_set_aside_and_protection_starts(
    supervisor: tuple[Supervisor, Clock],
    redis: Redis,
    engaged: str,
    pending: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    daemon, clock = supervisor
    state_dir = daemon.context.assembly.settings.supervisor.state_dir
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / ENGAGED_FILE).write_text(engaged, encoding="utf-8")
    (state_dir / PENDING_FILE).write_text(pending, encoding="utf-8")

    await daemon.reconciler.restore()  # raised on main: the daemon exited 1 at start
    await settle(daemon)

    aside = sorted(p.name for p in state_dir.iterdir() if ".unreadable-" in p.name)
    assert len(aside) == (1 if pending == "[]" or engaged == "{}" else 2)
    assert "bug:" not in caplog.text
    await stale_tick(redis, clock)  # protection works: a breach trips the breaker
    await daemon.cycle.run("w1")
    await settle(daemon)
    assert "breaker" in daemon.context.runtime.engaged


# --- the operator's commands over keys planted by hand ----------------------------------------


def test_trip_and_reset_go_through_over_keys_planted_by_hand(
    tmp_path: Path, redis_server: RedisServer, sync_redis: SyncRedis
) -> None:
    """`{ns}:seq` not a number, `{ns}:engaged` a list, a reset lock without expiry, a watchdog
    hash that is a list: the trip is latched and numbered, the reset releases it (with
    --force: a watchdog whose status cannot be read may be breaching)."""
    config, _ = write_config(tmp_path, redis_server.url)
    sync_redis.rpush("sup:engaged", "x")
    sync_redis.set("sup:seq", "5")
    tripped = cli("trip", "--reason", REASON, "--operator", "alice", "--config", str(config))
    assert tripped.returncode == 0, tripped.stderr
    assert "FAILED" not in tripped.stdout + tripped.stderr
    assert json.loads(sync_redis.hget("sup:engaged", "breaker") or "{}")["seq"] == 6

    sync_redis.set("sup:seq", "not a number")
    sync_redis.hset("sup:reset", "kill", "9")  # a reset numbered 9 is known: next is past it
    tripped = cli("trip", "--reason", REASON, "--operator", "alice", "--config", str(config))
    assert tripped.returncode == 0, tripped.stderr
    assert "FAILED" not in tripped.stdout + tripped.stderr
    assert json.loads(sync_redis.hget("sup:engaged", "breaker") or "{}")["seq"] == 10
    assert sync_redis.get("sup:unreadable:seq") == b"not a number"

    sync_redis.rpush("sup:reset_lock", "x")  # no expiry: it would refuse every reset forever
    sync_redis.rpush("sup:watchdog:spx_ticks", "x")
    args = ["reset", "breaker", "--reason", REASON, "--config", str(config)]
    refused = cli(*args)
    assert refused.returncode == 1 and "cannot be read" in refused.stderr
    forced = cli(*args, "--force")
    assert forced.returncode == 0, forced.stderr
    assert not sync_redis.hexists("sup:engaged", "breaker")
    assert sync_redis.lrange("sup:unreadable:reset_lock", 0, -1) == [b"x"]


def test_a_breaker_state_nested_too_deep_reads_as_not_tripped() -> None:
    assert breaker_state("[" * 100_000 + "]" * 100_000) != "TRIPPED"
    assert breaker_state('{"state": "TRIPPED"}') == "TRIPPED"


def test_defect_3_the_daemon_process_starts_over_extreme_state_files_and_trips(
    tmp_path: Path, redis_server: RedisServer, sync_redis: SyncRedis, notify_socket: NotifySocket
) -> None:
    """As an operator meets it: the real process, under the state files of defect 3, gets to
    READY=1 (on main: a traceback and exit 1, a restart loop under systemd) and trips."""
    config, _ = write_config(
        tmp_path, redis_server.url, warn="200ms", breach="300ms", interval="200ms"
    )
    state_dir = tmp_path / "state"
    state_dir.mkdir(mode=0o700)
    engaged = '{"breaker": {"level": "HALTED", "reason": "x", "at": ' + HUGE + "}}"
    (state_dir / ENGAGED_FILE).write_text(engaged, encoding="utf-8")
    (state_dir / PENDING_FILE).write_text(DEEP, encoding="utf-8")
    daemon = Daemon(config, notify_socket)  # no ticks: missing keys breach, the breaker trips
    try:
        notify_socket.wait_for("READY=1")
        wait_until(lambda: sync_redis.hexists("sup:engaged", "breaker"), 10, "the trip")
        aside = sorted(p.name.split(".unreadable-")[0] for p in state_dir.glob("*.unreadable-*"))
        assert aside == [ENGAGED_FILE, PENDING_FILE]
        assert "Traceback" not in daemon.log()
    finally:
        assert daemon.terminate() == 0, daemon.log()

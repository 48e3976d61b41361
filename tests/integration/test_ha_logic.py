"""The leader lease in-process: two supervisors on the real test Redis, each with a clock and a
monotonic clock the test moves by hand; lease claims, cycles and takeovers called directly.

Two real daemon processes (SIGKILL, SIGSTOP) are in test_ha_processes.py.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

import pytest
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from supervisor.config.loading import load_config
from supervisor.daemon import Supervisor
from supervisor.daemon.lease_keeper import LeaseKeeper
from supervisor.daemon.problems import Source
from supervisor.ha.instances import read_instances
from supervisor.ha.leadership import Role
from supervisor.ha.lease import Granted, HeldElsewhere, LeaseStore
from supervisor.keys import fencing_key, leader_key, order_key, token_key
from supervisor.kinds import kind_gauges
from supervisor.model import Decision, Status
from supervisor.publish.metrics import Metrics
from testbed.redis_server import RedisServer
from testbed.waiting import free_port

pytestmark = pytest.mark.anyio

CONFIG = """
[supervisor]
instance_id = "{instance}"
namespace = "sup"
state_dir = "{state_dir}"

[redis]
url = "{redis_url}"
timeout = "300ms"

[metrics]
enabled = false

[ha]
enabled = true
lease_ttl = "3s"
act_without_lease = {act_without_lease}

[actuators.breaker]
kind = "redis_breaker"
level = "reduce_only"

[[watchdogs]]
name = "w1"
kind = "tick_freshness"
key = "ticks:{{instrument}}"
instruments = ["SPX"]
breach = "10s"
interval = "1s"
on_breach = ["breaker"]
"""

HISTORY = "circuit_breaker:history"


class Clock:
    """A clock the test moves by hand (wall time for ages, or the lease's monotonic time)."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


class Instance:
    def __init__(self, daemon: Supervisor, clock: Clock, monotonic: Clock) -> None:
        self.daemon, self.clock, self.monotonic = daemon, clock, monotonic

    @property
    def lease(self) -> LeaseKeeper:
        assert self.daemon.lease is not None  # HA is on in every config here
        return self.daemon.lease

    async def claim(self) -> None:
        await self.lease.claim()
        await settle(self.daemon)

    async def cycle(self) -> None:
        await self.daemon.cycle.run("w1")
        await settle(self.daemon)

    def gauge(self, name: str) -> float | None:
        return self.daemon.context.metrics.registry.get_sample_value(name)


async def settle(daemon: Supervisor) -> None:
    """Wait for the actions, publications and audit records started in the background."""
    for _ in range(50):
        pending = [task for task in daemon.context.tasks.in_flight if not task.done()]
        if not pending:
            return
        await asyncio.wait(pending, timeout=2)


def build(
    tmp_path: Path, redis_url: str, instance: str, act_without_lease: bool = True
) -> Instance:
    directory = tmp_path / instance
    directory.mkdir(parents=True, exist_ok=True)  # again: a restart keeps state_dir
    path = directory / "supervisor.toml"
    text = CONFIG.format(
        instance=instance,
        state_dir=directory / "state",
        redis_url=redis_url,
        act_without_lease=str(act_without_lease).lower(),
    )
    path.write_text(text, encoding="utf-8")
    clock, monotonic = Clock(time.time()), Clock(1000.0)
    metrics = Metrics(CollectorRegistry(), kind_gauges=kind_gauges())
    daemon = Supervisor(load_config(path), path, metrics=metrics, clock=clock, monotonic=monotonic)
    return Instance(daemon, clock, monotonic)


@pytest.fixture
async def pair(
    tmp_path: Path, redis_server: RedisServer, redis: Redis
) -> AsyncIterator[tuple[Instance, Instance]]:
    """Two instances, "a" and "b" of a new stack; "a" claims the lease first."""
    a, b = build(tmp_path, redis_server.url, "a"), build(tmp_path, redis_server.url, "b")
    await new_stack(a, b)
    yield a, b
    for instance in (a, b):
        await settle(instance.daemon)
        await instance.daemon.context.assembly.close()
        instance.daemon.context.notifier.close()


async def new_stack(first: Instance, *others: Instance) -> None:
    """A new stack (no fencing counter in Redis, no token seen): every instance waits one
    lease_ttl before it claims (lease_keeper.py); then `first` leads and the others follow."""
    for instance in (first, *others):
        await instance.claim()
        assert role(instance) is Role.WAITING
    for instance in (first, *others):
        instance.monotonic.now += instance.daemon.context.leadership.lease_ttl_s
        await instance.claim()
    assert role(first) is Role.LEADER


def role(instance: Instance) -> Role:
    return instance.daemon.context.leadership.role


async def stale(redis: Redis, clock: Clock) -> None:
    await redis.set("ticks:SPX", f"{clock.now - 30:.3f}")


async def history(redis: Redis) -> list[dict[str, object]]:
    return [json.loads(cast(bytes, entry)) for entry in await redis.zrange(HISTORY, 0, -1)]


async def lease_expires(redis: Redis) -> None:
    """What Redis does when the leader's lease runs out (without waiting lease_ttl)."""
    await redis.delete(leader_key("sup"), token_key("sup"))


async def test_exactly_one_leader(pair: tuple[Instance, Instance], redis: Redis) -> None:
    a, b = pair
    leader, follower = a.daemon.context.leadership, b.daemon.context.leadership
    assert leader.role is Role.LEADER and leader.token is not None
    assert follower.role is Role.FOLLOWER and follower.leader == "a"
    assert follower.leader_token == leader.token and follower.token is None
    assert await redis.get(leader_key("sup")) == b"a"
    assert (a.gauge("supervisor_is_leader"), b.gauge("supervisor_is_leader")) == (1, 0)
    assert a.gauge("supervisor_leader_fencing_token") == leader.token
    assert b.gauge("supervisor_leader_fencing_token") == 0

    # Renewing keeps the same term; the follower asking again changes nothing.
    token = leader.token
    await a.claim()
    await b.claim()
    assert leader.token == token and leader.role is Role.LEADER
    assert follower.role is Role.FOLLOWER


async def test_only_the_leader_acts_and_its_fencing_token_is_in_the_trip(
    pair: tuple[Instance, Instance], redis: Redis
) -> None:
    a, b = pair
    await stale(redis, b.clock)
    await b.cycle()
    assert await history(redis) == []  # the follower judged BREACH and held back
    assert "breaker" in b.daemon.acting.held
    assert await redis.hget("sup:watchdog:w1", "status") is None  # nor published as leader

    await stale(redis, a.clock)
    await a.cycle()
    [trip] = await history(redis)
    token = a.daemon.context.leadership.token
    assert trip["by"] == "a" and trip["fencing_token"] == token
    breaker = json.loads(await redis.get("circuit_breaker:state") or "null")
    assert breaker["fencing_token"] == token


async def test_a_follower_takes_over_and_engages_what_nobody_engaged(
    pair: tuple[Instance, Instance], redis: Redis
) -> None:
    """The leader died before it acted: the follower's held decision is taken up, with the
    new term's token."""
    a, b = pair
    old_token = a.daemon.context.leadership.token
    assert old_token is not None
    await stale(redis, b.clock)
    await b.cycle()
    assert await history(redis) == []

    await lease_expires(redis)  # "a" is gone and never renews
    await b.claim()
    leadership = b.daemon.context.leadership
    assert leadership.role is Role.LEADER and leadership.token == old_token + 1
    [trip] = await history(redis)
    assert trip["by"] == "b" and trip["fencing_token"] == old_token + 1
    assert b.daemon.acting.held == {}


async def test_a_reset_voids_what_a_follower_held_back(
    pair: tuple[Instance, Instance], redis: Redis
) -> None:
    """Nemesis seed 30: a follower held back a breaker decision, the operator reset the
    breaker, and when the follower took over 4 s later it engaged the breaker again. A reset
    voids what is held for the actuators it releases, as it voids unconfirmed orders."""
    _, b = pair
    await stale(redis, b.clock)
    await b.cycle()
    assert "breaker" in b.daemon.acting.held
    await b.daemon.reconciler.refresh()  # the resets as they were
    await b.daemon.context.assembly.latches.record_reset(["breaker"])  # the operator's
    await b.daemon.reconciler.refresh()
    assert "breaker" not in b.daemon.acting.held

    await lease_expires(redis)  # "a" is gone and never renews
    await b.claim()
    assert role(b) is Role.LEADER
    assert await history(redis) == []
    assert "breaker" not in b.daemon.context.runtime.engaged


async def test_a_takeover_carries_out_the_old_leaders_order_under_its_incident_and_token(
    pair: tuple[Instance, Instance], redis: Redis
) -> None:
    """The leader sent the action and died before it saw it done (before its latch reached
    Redis): the new leader carries out that order as it was, so a venue that deduplicates
    by Idempotency-Key ({incident}:{actuator}:{token}) acts once."""
    a, b = pair
    token = a.daemon.context.leadership.token
    decision = Decision(
        watchdog="w1",
        severity=Status.BREACH,
        actuators=("breaker",),
        reason="SPX stale",
        incident_id="incident-of-a",
        at=a.clock.now,
        fencing_token=token,
    )
    await a.daemon.engagements.write_order("breaker", decision)  # sent; "a" dies before it is done
    await settle(a.daemon)
    # In Redis for a successor, for 3 lease_ttls (lease_ttl 3 s here) after it was last written.
    assert 8_000 < await redis.pttl(order_key("sup", "breaker")) <= 9_000

    await stale(redis, b.clock)
    await b.cycle()  # the follower's own decision for the same breach, held back
    await lease_expires(redis)
    await b.claim()
    [trip] = await history(redis)
    assert (trip["by"], trip["incident_id"], trip["fencing_token"]) == ("b", "incident-of-a", token)
    assert not await redis.exists(order_key("sup", "breaker"))  # done once latched
    assert b.daemon.acting.held == {}


async def test_an_unusable_shared_order_is_ignored_and_the_held_decision_taken_up(
    pair: tuple[Instance, Instance], redis: Redis
) -> None:
    _a, b = pair
    await redis.set(order_key("sup", "breaker"), "{not an order")  # by hand, or a bug
    await stale(redis, b.clock)
    await b.cycle()
    await lease_expires(redis)
    await b.claim()
    [trip] = await history(redis)
    assert trip["by"] == "b" and trip["fencing_token"] == b.daemon.context.leadership.token


async def test_a_takeover_does_not_act_again_on_what_the_old_leader_engaged(
    pair: tuple[Instance, Instance], redis: Redis
) -> None:
    a, b = pair
    await stale(redis, a.clock)
    await a.cycle()  # the leader trips
    await stale(redis, b.clock)
    await b.cycle()  # the follower holds the same decision back
    assert len(await history(redis)) == 1

    await lease_expires(redis)
    await b.claim()
    await b.cycle()  # the incident goes on under the new leader
    [trip] = await history(redis)
    assert trip["by"] == "a"  # one trip for the incident
    assert "breaker" in b.daemon.context.runtime.engaged  # the latch is shared
    summary = b.daemon.display.refresh()
    assert summary.trading_state.name == "REDUCE_ONLY"


async def test_a_leader_whose_lease_may_have_expired_stops_acting_by_its_own_clock(
    pair: tuple[Instance, Instance], redis: Redis
) -> None:
    """A SIGSTOPped or paused leader: when it runs again, its lease has lapsed by its
    monotonic clock, even though Redis still holds its key (it never heard otherwise)."""
    a, _b = pair
    leadership = a.daemon.context.leadership
    a.monotonic.now += leadership.lease_ttl_s - leadership.margin_s  # exactly the deadline
    a.daemon.housekeeping.keepalive(a.clock.now)
    assert a.gauge("supervisor_is_leader") == 0
    assert await redis.get(leader_key("sup")) == b"a"

    await stale(redis, a.clock)
    await a.cycle()
    assert await history(redis) == []
    assert "breaker" in a.daemon.acting.held

    # Renewed (nobody took it meanwhile): a new term, and the held decision is taken up.
    await a.claim()
    [trip] = await history(redis)
    assert trip["by"] == "a"


async def test_a_deposed_leader_learns_it_and_says_so(
    pair: tuple[Instance, Instance], redis: Redis
) -> None:
    a, b = pair
    a.monotonic.now += 10  # paused past its lease
    await lease_expires(redis)
    await b.claim()
    await a.claim()
    assert a.daemon.context.leadership.role is Role.FOLLOWER
    assert a.daemon.context.leadership.leader == "b"
    entries = await redis.xrange("sup:events") or []
    kinds = [((f or {}).get(b"kind"), (f or {}).get(b"outcome")) for _id, f in entries]
    assert (b"leadership", b"lost") in kinds and (b"leadership", b"acquired") in kinds


async def test_status_records_show_every_instance(
    pair: tuple[Instance, Instance], redis: Redis
) -> None:
    a, _b = pair
    await redis.set("ticks:SPX", f"{a.clock.now:.3f}")
    for instance in pair:
        await instance.cycle()
        await instance.daemon.publishing.publish_state()
    records = await read_instances(redis, "sup")
    assert [(r["instance"], r["role"]) for r in records] == [("a", "leader"), ("b", "follower")]
    leader, follower = records
    assert leader["fencing_token"] == str(a.daemon.context.leadership.token)
    assert follower["fencing_token"] == "" and follower["leader"] == "a"
    assert json.loads(leader["verdicts"]) == json.loads(follower["verdicts"]) == {"w1": "OK"}
    # Only the leader writes the state hash; every instance keeps the heartbeat.
    assert await redis.hget("sup:state", "instance") == b"a"
    assert await redis.hget("sup:state", "leader") == b"a"


async def test_a_clean_stop_gives_the_lease_up(
    pair: tuple[Instance, Instance], redis: Redis
) -> None:
    a, b = pair
    await a.lease.release()
    assert await redis.get(leader_key("sup")) is None
    await b.claim()
    assert b.daemon.context.leadership.role is Role.LEADER


async def test_a_fencing_token_never_goes_backward(redis_server: RedisServer, redis: Redis) -> None:
    """Redis lost the counter (FLUSHALL, a failover to a replica that missed the INCR): the
    next token is still above every token the claimant has seen."""
    a = LeaseStore(redis, "sup", "a", 3.0)
    b = LeaseStore(redis, "sup", "b", 3.0)
    first = await a.claim(None, 0)
    assert isinstance(first, Granted)
    await redis.flushall()
    again = await b.claim(None, first.token)
    assert isinstance(again, Granted) and again.token == first.token + 1


async def close(instance: Instance) -> None:
    await settle(instance.daemon)
    await instance.daemon.context.assembly.close()
    instance.daemon.context.notifier.close()


@pytest.mark.parametrize("restarted", ["a", "b"])
async def test_a_restart_after_redis_lost_the_counter_claims_above_every_token_seen(
    tmp_path: Path, redis_server: RedisServer, redis: Redis, restarted: str
) -> None:
    """The leader ("a") or a follower ("b") restarts while Redis is emptied (FLUSHALL, a
    Redis restarted without persistence): its claim, one lease_ttl later (it has seen no
    token since it started), still issues a token above the last one, because what it saw
    before the restart was kept in its state_dir."""
    await redis.set(fencing_key("sup"), 41)
    a, b = build(tmp_path, redis_server.url, "a"), build(tmp_path, redis_server.url, "b")
    await a.claim()
    await b.claim()  # the follower reads the leader's token
    assert a.daemon.context.leadership.token == 42
    assert b.daemon.context.leadership.leader == "a"
    for instance in (a, b):
        await close(instance)
    await redis.flushall()
    again = build(tmp_path, redis_server.url, restarted)  # a new process, the same state_dir
    try:
        await again.claim()  # it has seen no token since it started: it waits lease_ttl
        leadership = again.daemon.context.leadership
        assert role(again) is Role.WAITING and await redis.dbsize() == 0
        again.monotonic.now += leadership.lease_ttl_s - 0.1
        await again.claim()
        assert role(again) is Role.WAITING and await redis.dbsize() == 0
        again.monotonic.now += 0.2
        await again.claim()
        assert role(again) is Role.LEADER and leadership.token == 43
        assert await redis.get(fencing_key("sup")) == b"43"
    finally:
        await close(again)


async def test_a_duplicate_started_while_redis_lost_everything_leaves_the_id_and_lease_alone(
    pair: tuple[Instance, Instance], tmp_path: Path, redis_server: RedisServer, redis: Redis
) -> None:
    """Nemesis seed 30 (30 minutes): a second process with instance_id "a" and an empty
    state_dir started while Redis restarted empty; it claimed first and took fencing token 1
    after 60 (a venue keeping the highest token would refuse its kill). Now it waits one
    lease_ttl: the running "a" claims above every token it saw and holds its id again, and
    the duplicate is told so."""
    a, b = pair
    await redis.set(fencing_key("sup"), 60)
    await lease_expires(redis)
    await a.claim()  # a new term, above the counter
    assert a.daemon.context.leadership.token == 61
    await redis.flushall()
    duplicate = build(tmp_path / "duplicate", redis_server.url, "a")
    try:
        await duplicate.claim()
        assert role(duplicate) is Role.WAITING
        assert await redis.dbsize() == 0  # neither the id nor the counter written
        await a.claim()
        assert a.daemon.context.leadership.token == 62
        duplicate.monotonic.now += 3.1
        await duplicate.claim()
        assert role(duplicate) is Role.DUPLICATE
        await b.claim()
        assert b.daemon.context.leadership.leader == "a"

        # Nemesis seed 30, again: Redis emptied once more long after; the duplicate, which
        # has only seen its id held by another, claims first. It waits again.
        await redis.flushall()
        duplicate.monotonic.now += 10.0
        await duplicate.claim()
        assert role(duplicate) is Role.WAITING and await redis.dbsize() == 0
        await a.claim()
        assert a.daemon.context.leadership.token == 63
    finally:
        await close(duplicate)


async def test_renewal_extends_only_the_callers_own_lease(redis: Redis) -> None:
    a = LeaseStore(redis, "sup", "a", 3.0)
    b = LeaseStore(redis, "sup", "b", 3.0)
    granted = await a.claim(None, 0)
    assert isinstance(granted, Granted)
    token = granted.token
    refused = await b.claim(token, token)  # b cannot renew a's lease with a's token
    assert isinstance(refused, HeldElsewhere) and refused.holder == "a"
    assert 2.5 < refused.remaining_s <= 3.0 and refused.token == token
    assert refused.counter == token  # a follower learns the counter too
    renewed = await a.claim(token, token)
    assert isinstance(renewed, Granted) and renewed.token == token


async def test_redis_out_of_reach_acts_without_a_lease_unless_told_not_to(
    tmp_path: Path,
) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    for act_without_lease, expected in ((True, True), (False, False)):
        instance = build(tmp_path / str(act_without_lease), dead, "solo", act_without_lease)
        try:
            await instance.claim()  # one unanswered claim may be this process's own pause
            context = instance.daemon.context
            assert role(instance) is Role.STARTING and not context.may_act()
            await instance.claim()  # the next one says Redis cannot be reached
            assert role(instance) is Role.NO_LEASE
            assert context.may_act() is expected
            assert not context.leads()  # releases (auto_reset) never run without a lease
            assert context.runtime.problems.has(Source.REDIS)
        finally:
            await settle(instance.daemon)
            await instance.daemon.context.assembly.close()
            instance.daemon.context.notifier.close()

"""Every reader of the daemon's own keys, against the real test Redis, with the key holding
anything (issue 16): any Redis type (string, list, set, zset, hash, stream) and any content
(JSON of any shape and depth, huge integers, bytes that are not UTF-8). None raises; each
returns a valid value or leaves the entry out; a counter never goes backward. Then the whole
daemon: a takeover and a housekeeping pass with one of its keys planted still write the
heartbeat and fail no step."""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from supervisor.ha.instances import read_instances
from supervisor.ha.lease import Granted, HeldElsewhere, IdentityTaken, LeaseStore
from supervisor.ha.orders import SharedOrders
from supervisor.keys import (
    boot_key,
    engaged_key,
    fencing_key,
    heartbeat_key,
    identity_key,
    instance_key,
    instances_key,
    leader_key,
    order_key,
    reset_key,
    seq_key,
    state_key,
    token_key,
    watchdog_key,
)
from supervisor.latch import LatchStore
from supervisor.model import TradingState
from supervisor.publish.published import read_published
from supervisor.stored import MAX_COUNTER, SIGHTINGS
from testbed.redis_server import RedisServer
from tests.integration.test_ha_logic import build, settle
from tests.unit.test_stored_readback import latch_like, order_like, stored_bytes

EXAMPLES = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
NS = "sup"
TYPES = ("string", "list", "set", "zset", "hash", "stream")
payloads = st.one_of(
    stored_bytes,
    latch_like.map(lambda v: json.dumps(v).encode()),
    order_like.map(lambda v: json.dumps(v).encode()),
    st.sampled_from([b"1" + b"0" * 400, b"9223372036854775807", b"-5", b"1e400", b"\xff\xfe"]),
)
planted = st.tuples(st.sampled_from(TYPES), payloads, st.binary(min_size=1, max_size=8))


async def plant(redis: Redis, key: str, kind: str, payload: bytes, field: bytes) -> None:
    """`key` as a `kind` holding `payload` (as its value, member or field value)."""
    await redis.delete(key)
    if kind == "string":
        await redis.set(key, payload)
    elif kind == "list":
        await redis.rpush(key, payload)
    elif kind == "set":
        await redis.sadd(key, payload)
    elif kind == "zset":
        await redis.zadd(key, {payload: 1})
    elif kind == "hash":
        await redis.hset(key, field, payload)
    else:
        await redis.xadd(key, {field: payload})


def with_redis(server: RedisServer, body: Callable[[Redis], Awaitable[None]]) -> None:
    """Run one example on a fresh event loop with its own client, Redis emptied first."""

    async def run() -> None:
        redis = Redis.from_url(server.url)
        try:
            await redis.flushall()
            await body(redis)
        finally:
            await redis.aclose()

    anyio.run(run)


@pytest.fixture(autouse=True)
def fresh_sightings() -> None:
    SIGHTINGS.forget()


@EXAMPLES
@given(engaged=planted, reset=planted)
def test_engaged_and_reset_read_back_as_valid_latches_and_reset_numbers(
    redis_server: RedisServer, engaged: tuple[str, bytes, bytes], reset: tuple[str, bytes, bytes]
) -> None:
    async def body(redis: Redis) -> None:
        await plant(redis, engaged_key(NS), *engaged)
        await plant(redis, reset_key(NS), *reset)
        store = LatchStore(Path("/nonexistent"), redis, NS)
        latches, resets = await store.load_redis()
        for latch in latches.values():
            assert isinstance(latch.level, TradingState) and math.isfinite(latch.at)
        assert all(0 <= number <= MAX_COUNTER for number in resets.values())
        assert await store.load_redis() == (latches, resets)  # and so on every pass

    with_redis(redis_server, body)


@EXAMPLES
@given(seq=planted, known=st.integers(min_value=0, max_value=10**15))
def test_the_seq_counter_always_moves_past_every_number_known(
    redis_server: RedisServer, seq: tuple[str, bytes, bytes], known: int
) -> None:
    async def body(redis: Redis) -> None:
        await redis.hset(reset_key(NS), "breaker", str(known))
        latch = b'{"level": "HALTED", "reason": "r", "at": 1.0, "seq": %d}' % (known + 1)
        await redis.hset(engaged_key(NS), "kill", latch)
        await plant(redis, seq_key(NS), *seq)
        store = LatchStore(Path("/nonexistent"), redis, NS)
        first = await store.next_seq()
        second = await store.next_seq()
        counter = int(await redis.get(seq_key(NS)) or 0)
        if counter < MAX_COUNTER:  # a counter at 2**63-1 planted as a valid one is kept
            assert known + 1 < first < second

    with_redis(redis_server, body)


@EXAMPLES
@given(order=planted)
def test_a_shared_order_reads_back_as_a_valid_order_or_none(
    redis_server: RedisServer, order: tuple[str, bytes, bytes]
) -> None:
    async def body(redis: Redis) -> None:
        await plant(redis, order_key(NS, "breaker"), *order)
        orders = await SharedOrders(redis, NS, 3.0).load(["breaker"])
        for found in orders:
            assert math.isfinite(found.decision.at)
        assert len(orders) <= 1

    with_redis(redis_server, body)


@EXAMPLES
@given(
    which=st.sampled_from(
        [leader_key(NS), token_key(NS), fencing_key(NS), boot_key(NS), identity_key(NS, "a")]
    ),
    lease=planted,
    highest_seen=st.integers(min_value=0, max_value=10**12),
)
def test_a_claim_over_any_lease_keys_grants_a_token_above_every_one_seen(
    redis_server: RedisServer, which: str, lease: tuple[str, bytes, bytes], highest_seen: int
) -> None:
    async def body(redis: Redis) -> None:
        await plant(redis, which, *lease)
        store = LeaseStore(redis, NS, "a", 3.0)
        reply = await store.claim(None, highest_seen)
        if isinstance(reply, Granted):
            assert reply.token > highest_seen
            again = await store.claim(reply.token, reply.token)  # a renewal keeps its term
            assert isinstance(again, Granted) and again.token == reply.token
        else:  # a string planted as this id's holder: told apart (never expires)
            assert isinstance(reply, IdentityTaken), reply
            assert which == identity_key(NS, "a") and reply.remaining_s is None

    with_redis(redis_server, body)


@pytest.mark.parametrize(
    "planted_holder",
    [
        b"[" * 100_000 + b"]" * 100_000,  # the nemesis's seed 42: deep JSON, then a huge int
        b'{"level":"HALTED","reason":"x","at":1' + b"0" * 400 + b"}",
        b"9223372036854775807",  # an instance id's shape, but no claim writes it without expiry
        b"not a number",
        b"\xff\xfe",
    ],
)
def test_garbage_in_the_leader_key_is_set_aside_and_the_lease_claimed(
    redis_server: RedisServer, planted_holder: bytes
) -> None:
    async def body(redis: Redis) -> None:
        await redis.set(leader_key(NS), planted_holder)  # no expiry: it would block forever
        store = LeaseStore(redis, NS, "a", 3.0)
        reply = await store.claim(None, 7)
        assert isinstance(reply, Granted) and reply.token > 7
        assert await redis.get(leader_key(NS)) == b"a"
        assert await redis.get(f"{NS}:unreadable:leader") == planted_holder
        assert await redis.pttl(f"{NS}:unreadable:leader") > 0
        assert SIGHTINGS.counts().get("leader") == 1

    with_redis(redis_server, body)


def test_a_live_holder_of_another_instance_is_never_set_aside(redis_server: RedisServer) -> None:
    async def body(redis: Redis) -> None:
        other = LeaseStore(redis, NS, "b", 3.0)
        assert isinstance(await other.claim(None, 0), Granted)
        reply = await LeaseStore(redis, NS, "a", 3.0).claim(None, 0)
        assert isinstance(reply, HeldElsewhere) and reply.holder == "b"
        assert await redis.exists(f"{NS}:unreadable:leader") == 0

    with_redis(redis_server, body)


@EXAMPLES
@given(instances=planted, record=planted)
def test_status_reads_any_instance_keys(
    redis_server: RedisServer, instances: tuple[str, bytes, bytes], record: tuple[str, bytes, bytes]
) -> None:
    async def body(redis: Redis) -> None:
        await plant(redis, instances_key(NS), *instances)
        await redis.sadd(instances_key(NS), "a") if instances[0] == "set" else None
        await plant(redis, instance_key(NS, "a"), *record)
        records = await read_instances(redis, NS)
        assert all(isinstance(r, dict) for r in records)

    with_redis(redis_server, body)


@EXAMPLES
@given(
    which=st.sampled_from([state_key(NS), heartbeat_key(NS), watchdog_key(NS, "w1")]),
    value=planted,
)
def test_status_reads_any_published_keys(
    redis_server: RedisServer, tmp_path: Path, which: str, value: tuple[str, bytes, bytes]
) -> None:
    instance = build(Path(tempfile.mkdtemp(dir=tmp_path)), redis_server.url, "a")
    settings_ = instance.daemon.context.assembly.settings

    async def body(redis: Redis) -> None:
        await plant(redis, which, *value)
        published = await read_published(settings_)
        assert "error" not in published
        assert published["alive"] == (which == heartbeat_key(NS) and value[0] == "string")

    with_redis(redis_server, body)


OWN_KEYS = [
    *(f"{NS}:{rest}" for rest in ("state", "heartbeat", "engaged", "reset", "seq", "events")),
    *(f"{NS}:{rest}" for rest in ("watchdog:w1", "instances", "instance:b", "order:breaker")),
    *(f"{NS}:{rest}" for rest in ("leader", "leader:token", "leader:fencing", "leader:boot")),
    f"{NS}:identity:b",
]


@pytest.mark.parametrize("own_type", [True, False], ids=["own-type", "any-type"])
@pytest.mark.parametrize("key", OWN_KEYS)
@settings(
    max_examples=4,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(value=planted)
def test_a_takeover_and_a_housekeeping_pass_go_on_over_any_planted_key(
    redis_server: RedisServer,
    tmp_path: Path,
    key: str,
    own_type: bool,
    value: tuple[str, bytes, bytes],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Anything in one key (of its own type, with any content; or of any type)."""

    async def body(redis: Redis) -> None:
        instance = build(Path(tempfile.mkdtemp(dir=tmp_path)), redis_server.url, "b")
        daemon = instance.daemon
        try:
            types = {**daemon.publishing.own_keys(), f"{NS}:events": "stream"}
            kind, payload, field = value
            await plant(redis, key, types[key] if own_type else kind, payload, field)
            await instance.claim()  # a takeover: reconcile, adopt orders, take up held
            await daemon.housekeeping.run()
            await settle(daemon)
            await daemon.housekeeping.run()  # a key of a wrong type was set aside meanwhile
            await settle(daemon)
            assert await redis.get(heartbeat_key(NS)) is not None
            registry = daemon.context.metrics.registry
            failed = [
                s.labels["step"]
                for m in registry.collect()
                if m.name == "supervisor_pass_step_failures"
                for s in m.samples
                if s.name.endswith("_total") and s.value
            ]
            assert failed == []
        finally:
            await settle(daemon)
            await daemon.context.assembly.close()
            daemon.context.notifier.close()

    with_redis(redis_server, body)
    assert "bug:" not in caplog.text

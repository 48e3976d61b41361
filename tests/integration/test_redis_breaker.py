"""redis_breaker against a real redis-server: atomic, idempotent, audited, observable."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from redis.asyncio import Redis

from supervisor.actuators.base import ActionContext
from supervisor.actuators.redis_breaker import RedisBreaker, RedisBreakerConfig, breaker_state
from supervisor.model import Decision, Status

pytestmark = pytest.mark.anyio

DECISION = Decision(
    "spx_ticks", Status.BREACH, ("breaker",), "SPX age 17.2s > 15s", "inc-1", 1000.0
)
CONTEXT = ActionContext(instance_id="sup-a", now=1000.5)


async def read_json(redis: Redis, key: str) -> Any:
    raw = await redis.get(key)
    assert raw is not None, f"{key} is missing"
    return json.loads(raw)


def breaker(redis: Redis, **overrides: Any) -> RedisBreaker:
    config = RedisBreakerConfig.model_validate({"kind": "redis_breaker", **overrides})
    return RedisBreaker("breaker", config, redis)


async def test_trip_writes_value_history_and_publishes(redis: Redis) -> None:
    pubsub = redis.pubsub()
    await pubsub.subscribe("circuit_breaker:state")
    await pubsub.get_message(timeout=1)  # the subscribe confirmation
    assert (await breaker(redis).engage(DECISION, CONTEXT)).changed is True
    value = await read_json(redis, "circuit_breaker:state")
    assert value["state"] == "TRIPPED"
    assert value["watchdog"] == "spx_ticks"
    assert value["by"] == "sup-a"
    assert value["tripped_at"] == 1000.5
    history = await redis.zrange("circuit_breaker:history", 0, -1, withscores=True)
    assert len(history) == 1
    member = history[0][0]
    assert isinstance(member, bytes)
    assert json.loads(member)["incident_id"] == "inc-1"
    message = await pubsub.get_message(timeout=2)
    assert message is not None and json.loads(message["data"])["state"] == "TRIPPED"
    await pubsub.aclose()  # type: ignore[no-untyped-call]
    assert await breaker(redis).is_engaged() is True


async def test_trip_while_tripped_changes_nothing(redis: Redis) -> None:
    first = breaker(redis)
    assert (await first.engage(DECISION, CONTEXT)).changed is True
    before = await redis.get("circuit_breaker:state")
    later = ActionContext(instance_id="sup-b", now=2000.0)
    assert (await first.engage(DECISION, later)).changed is False
    assert await redis.get("circuit_breaker:state") == before
    assert await redis.zcard("circuit_breaker:history") == 1


async def test_two_supervisors_at_once_trip_once(redis: Redis) -> None:
    a, b = breaker(redis), breaker(redis)
    results = await asyncio.gather(*(x.engage(DECISION, CONTEXT) for x in [a, b] * 5))
    assert [r.changed for r in results].count(True) == 1
    assert await redis.zcard("circuit_breaker:history") == 1


async def test_keeps_the_owner_updated_at(redis: Redis) -> None:
    owner = {"state": "OPEN", "updated_at": 123.0, "owner_field": "kept?"}
    await redis.set("circuit_breaker:state", json.dumps(owner))
    assert (await breaker(redis).engage(DECISION, CONTEXT)).changed is True
    value = await read_json(redis, "circuit_breaker:state")
    assert value["state"] == "TRIPPED"
    assert value["updated_at"] == 123.0  # a dead breaker owner must still look dead


async def test_plain_format_and_open_breaker(redis: Redis) -> None:
    plain = breaker(redis, format="plain", key="cb")
    await redis.set("cb", "OPEN")
    assert await plain.is_engaged() is False
    assert (await plain.engage(DECISION, CONTEXT)).changed is True
    assert await redis.get("cb") == b"TRIPPED"
    assert await plain.is_engaged() is True


async def test_history_is_capped(redis: Redis) -> None:
    capped = breaker(redis, history_max=3)
    for index in range(5):
        await redis.set("circuit_breaker:state", "OPEN")
        decision = Decision("w", Status.BREACH, ("breaker",), "r", f"inc-{index}", 1.0)
        await capped.engage(decision, ActionContext("sup-a", 1000.0 + index))
    assert await redis.zcard("circuit_breaker:history") == 3


@pytest.mark.parametrize(
    ("raw", "state"),
    [(b'{"state": "TRIPPED"}', "TRIPPED"), (b"OPEN", "OPEN"), (b"[1]", "[1]"), (b"\xff", "\ufffd")],
)
def test_breaker_state_reads_json_or_plain(raw: bytes, state: str) -> None:
    assert breaker_state(raw) == state

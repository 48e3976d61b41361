"""cb_staleness against a real redis-server: every layout, each status, a stuck updated_at."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from pydantic import ValidationError
from redis.asyncio import Redis

from supervisor.actuators.base import ActionContext
from supervisor.actuators.redis_breaker import RedisBreaker, RedisBreakerConfig
from supervisor.config.sections import RedisSection
from supervisor.constants import DEADLINE_EPSILON_S
from supervisor.kinds import kind_gauges
from supervisor.model import Decision, Status, Verdict, Verdicts, WatchdogRun
from supervisor.protection import rules_for
from supervisor.publish.metrics import Metrics
from supervisor.sources.redis import connect
from supervisor.watchdogs.base import evaluate
from supervisor.watchdogs.cb_staleness import CbStaleness, CbStalenessConfig

pytestmark = pytest.mark.anyio

KEY = "circuit_breaker:state"


def watchdog(redis: Redis, **overrides: Any) -> CbStaleness:
    fields: dict[str, Any] = {
        "name": "cb_staleness",
        "kind": "cb_staleness",
        "key": KEY,
        "json_field": "updated_at",
    }
    return CbStaleness(CbStalenessConfig.model_validate({**fields, **overrides}), redis)


async def write_breaker(redis: Redis, updated_at: float, state: str = "OPEN") -> None:
    await redis.set(KEY, json.dumps({"state": state, "updated_at": updated_at}))


async def judge(redis: Redis, now: float, **overrides: Any) -> Verdict:
    (verdict,) = await watchdog(redis, **overrides).check(now, None)
    return verdict


async def test_defaults_are_the_runbook_sla_and_fail_closed() -> None:
    config = CbStalenessConfig.model_validate(
        {"name": "cb", "kind": "cb_staleness", "key": KEY, "json_field": "updated_at"}
    )
    assert (config.warn_s, config.breach_s, config.critical_s) == (5.0, 10.0, None)
    assert config.fail_closed is True
    assert rules_for(config).fail_closed is True


@pytest.mark.parametrize(
    ("age_s", "status"),
    [(1.0, Status.OK), (6.0, Status.WARN), (11.0, Status.BREACH), (61.0, Status.CRITICAL)],
)
async def test_each_status(redis: Redis, age_s: float, status: Status) -> None:
    now = time.time()
    await write_breaker(redis, now - age_s)
    verdict = await judge(redis, now, critical="60s")
    assert verdict.subject == KEY
    assert verdict.status is status
    assert verdict.value == pytest.approx(age_s)
    assert verdict.unit == "s"


async def test_reason_threshold_and_deadline(redis: Redis) -> None:
    now = time.time()
    await write_breaker(redis, now - 12.5)
    verdict = await judge(redis, now)
    assert verdict.reason == f"{KEY}: last update 12.5s ago > 10s"
    assert verdict.threshold == 10.0
    assert verdict.deadline is None  # no critical: nothing worse to wait for
    await write_breaker(redis, now - 2.5)
    verdict = await judge(redis, now)
    assert verdict.reason == f"{KEY}: last update 2.50s ago"
    assert verdict.deadline == pytest.approx(now - 2.5 + 5 + DEADLINE_EPSILON_S)


async def test_breaker_whose_updated_at_stops_moving(redis: Redis) -> None:
    dog = watchdog(redis)
    t0 = time.time()
    for second in range(4):  # the owner updates every second...
        await write_breaker(redis, t0 + second)
        assert (await dog.check(t0 + second + 0.2, None))[0].status is Status.OK
    # ...then dies: the value stays, updated_at stops moving.
    statuses = [(await dog.check(t0 + 3 + later, None))[0].status for later in (4, 6, 9, 11)]
    assert statuses == [Status.OK, Status.WARN, Status.WARN, Status.BREACH]


async def test_a_trip_by_our_breaker_does_not_make_a_stale_breaker_look_fresh(
    redis: Redis,
) -> None:
    now = time.time()
    await write_breaker(redis, now - 20)  # the owner died 20 s ago
    breaker = RedisBreaker(
        "breaker", RedisBreakerConfig.model_validate({"kind": "redis_breaker"}), redis
    )
    decision = Decision("cb_staleness", Status.BREACH, ("breaker",), "stale", "inc-1", now)
    outcome = await breaker.engage(decision, ActionContext(instance_id="sup-a", now=now))
    assert outcome.changed is True
    assert json.loads(await redis.get(KEY) or b"{}")["state"] == "TRIPPED"
    verdict = await judge(redis, now + 1)
    assert verdict.status is Status.BREACH
    assert verdict.value == pytest.approx(21.0, abs=0.01)  # cjson keeps 14 digits


async def test_hash_field_layout(redis: Redis) -> None:
    now = time.time()
    await redis.hset(KEY, mapping={"state": "OPEN", "updated_at": str(int((now - 7) * 1000))})
    verdict = await judge(redis, now, json_field=None, field="updated_at")
    assert verdict.status is Status.WARN
    assert verdict.value == pytest.approx(7.0, abs=0.01)
    verdict = await judge(redis, now, json_field=None, field="heartbeat")
    assert verdict.status is Status.UNKNOWN
    assert verdict.reason == f"{KEY}: unreadable last update: hash has no field 'heartbeat'"


async def test_separate_timestamp_key_layout(redis: Redis) -> None:
    now = time.time()
    await redis.set(KEY, "OPEN")
    await redis.set("circuit_breaker:updated_at", time.strftime("%Y-%m-%dT%H:%M:%SZ"))
    overrides = {"json_field": None, "timestamp_key": "circuit_breaker:updated_at"}
    assert (await judge(redis, now, **overrides)).status is Status.OK
    await redis.delete("circuit_breaker:updated_at")
    verdict = await judge(redis, now, **overrides)
    assert verdict.status is Status.BREACH
    assert "timestamp key circuit_breaker:updated_at missing" in verdict.reason


async def test_missing_breaker_is_a_breach(redis: Redis) -> None:
    for overrides in ({}, {"json_field": None, "field": "ts"}):
        verdict = await judge(redis, time.time(), **overrides)
        assert verdict.status is Status.BREACH
        assert verdict.reason == f"{KEY}: breaker state missing: its owner is not running"
        assert verdict.value is None


@pytest.mark.parametrize(
    ("stored", "why"),
    [
        (b"TRIPPED", "value is not valid JSON"),
        (b'{"state": "OPEN"}', "JSON has no 'updated_at'"),
        (b'{"updated_at": "yesterday"}', "not a timestamp: 'yesterday'"),
        (b'{"updated_at": true}', "not a timestamp: True"),
        (b"\xff\xfe", "value is not valid JSON"),
    ],
)
async def test_unreadable_breaker_is_unknown(redis: Redis, stored: bytes, why: str) -> None:
    await redis.set(KEY, stored)
    verdict = await judge(redis, time.time())
    assert verdict.status is Status.UNKNOWN
    assert verdict.reason == f"{KEY}: unreadable last update: {why}"


async def test_future_timestamp_is_unknown_not_fresh(redis: Redis) -> None:
    now = time.time()
    await write_breaker(redis, now + 60)
    verdict = await judge(redis, now)
    assert verdict.status is Status.UNKNOWN
    assert "in the future (clock skew?)" in verdict.reason
    await write_breaker(redis, now + 1)  # within max_future: clocks differ a little
    assert (await judge(redis, now)).status is Status.OK


async def test_wrong_type_is_unknown(redis: Redis) -> None:
    await redis.lpush(KEY, "x")
    verdict = await judge(redis, time.time())
    assert verdict.status is Status.UNKNOWN
    assert "WRONGTYPE" in verdict.reason


async def test_unreachable_redis_is_unknown() -> None:
    client = connect(RedisSection.model_validate({"url": "redis://127.0.0.1:1/0"}), "test")
    try:
        verdicts = await evaluate(watchdog(client), None, time.time())
    finally:
        await client.aclose()
    assert [v.status for v in verdicts] == [Status.UNKNOWN]
    assert verdicts[0].reason.startswith("redis: ConnectionError")


async def test_gauge_is_the_age(redis: Redis) -> None:
    now = time.time()
    await write_breaker(redis, now - 3)
    verdicts = await watchdog(redis).check(now, None)
    metrics = Metrics(kind_gauges=kind_gauges())
    metrics.observe_run(
        "cb_staleness", WatchdogRun("cb_staleness", Status.OK, Verdicts.of(verdicts), now, 0.0)
    )
    sample = metrics.registry.get_sample_value
    age = sample("supervisor_cb_staleness_seconds", {"watchdog": "cb_staleness"})
    assert age == pytest.approx(3.0)


def test_config_wants_exactly_one_layout() -> None:
    base = {"name": "cb", "kind": "cb_staleness", "key": KEY}
    for extra in ({}, {"json_field": "updated_at", "field": "ts"}):
        with pytest.raises(ValidationError, match="set exactly one of"):
            CbStalenessConfig.model_validate({**base, **extra})

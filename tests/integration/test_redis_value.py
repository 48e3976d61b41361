"""redis_value against a real redis-server: plain / hash / JSON values, both directions."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from pydantic import ValidationError
from redis.asyncio import Redis

from supervisor.config.sections import RedisSection
from supervisor.model import Status, Verdict
from supervisor.sources.redis import connect
from supervisor.watchdogs.base import evaluate
from supervisor.watchdogs.redis_value import RedisValue, RedisValueConfig

pytestmark = pytest.mark.anyio


def watchdog(redis: Redis, **overrides: Any) -> RedisValue:
    fields: dict[str, Any] = {
        "name": "exposure",
        "kind": "redis_value",
        "key": "risk:exposure",
        "warn": 0.8,
        "breach": 1.0,
        "critical": 2.0,
    }
    return RedisValue(RedisValueConfig.model_validate({**fields, **overrides}), redis)


async def judge(redis: Redis, **overrides: Any) -> Verdict:
    (verdict,) = await watchdog(redis, **overrides).check(time.time(), None)
    return verdict


@pytest.mark.parametrize(
    ("stored", "status"),
    [
        ("0.5", Status.OK),
        ("0.8", Status.OK),  # equal never crosses
        ("0.9", Status.WARN),
        ("1.5", Status.BREACH),
        ("2.5e0", Status.CRITICAL),
    ],
)
async def test_plain_value_above(redis: Redis, stored: str, status: Status) -> None:
    await redis.set("risk:exposure", stored)
    verdict = await judge(redis)
    assert (verdict.subject, verdict.status) == ("risk:exposure", status)
    assert verdict.value == float(stored)


async def test_reason_unit_and_threshold(redis: Redis) -> None:
    await redis.set("risk:exposure", "1.25")
    verdict = await judge(redis, unit="ratio")
    assert verdict.reason == "risk:exposure 1.250 > 1.000"
    assert (verdict.unit, verdict.threshold) == ("ratio", 1.0)
    await redis.set("risk:exposure", "0.1")
    verdict = await judge(redis)
    assert (verdict.reason, verdict.threshold) == ("risk:exposure 0.1", 1.0)


@pytest.mark.parametrize(
    ("stored", "status"),
    [("100", Status.OK), ("49", Status.WARN), ("9", Status.BREACH), ("0", Status.CRITICAL)],
)
async def test_hash_field_below(redis: Redis, stored: str, status: Status) -> None:
    await redis.hset("engine:stats", mapping={"ticks_per_min": stored, "other": "x"})
    overrides = {"key": "engine:stats", "field": "ticks_per_min", "direction": "below"}
    verdict = await judge(redis, **overrides, warn=50, breach=10, critical=1)
    assert verdict.subject == "engine:stats[ticks_per_min]"
    assert verdict.status is status
    if status is Status.BREACH:
        assert verdict.reason == "engine:stats[ticks_per_min] 9 < 10"


async def test_json_field(redis: Redis) -> None:
    await redis.set("risk:exposure", json.dumps({"gross": {"ratio": 1.2}, "text": "0.3"}))
    verdict = await judge(redis, json_field="gross.ratio")
    assert (verdict.subject, verdict.status, verdict.value) == (
        "risk:exposure[gross.ratio]",
        Status.BREACH,
        1.2,
    )
    assert (await judge(redis, json_field="text")).status is Status.OK  # numeric text counts


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({}, "risk:exposure: missing (key does not exist)"),
        ({"field": "f"}, "risk:exposure[f]: missing (field 'f' does not exist)"),
        ({"json_field": "a.b"}, "risk:exposure[a.b]: missing (key does not exist)"),
    ],
)
async def test_missing_is_unknown(redis: Redis, overrides: dict[str, Any], reason: str) -> None:
    verdict = await judge(redis, **overrides)
    assert (verdict.status, verdict.reason, verdict.value) == (Status.UNKNOWN, reason, None)


@pytest.mark.parametrize(
    ("stored", "overrides", "why"),
    [
        (b"lots", {}, "not a number: 'lots'"),
        (b"nan", {}, "not a number: 'nan'"),
        (b"\xff\xfe", {}, "value is not valid UTF-8"),
        (b"{}", {"json_field": "a"}, "missing (JSON has no 'a')"),
        (b'{"a": true}', {"json_field": "a"}, "not a number: True"),
        (b'{"a": {"b": 1}}', {"json_field": "a"}, "not a number: a dict"),
        (b"[1", {"json_field": "a"}, "value is not valid JSON"),
        (b'{"a": 1e999}', {"json_field": "a"}, "not a finite number: inf"),
    ],
)
async def test_malformed_is_unknown_with_a_reason(
    redis: Redis, stored: bytes, overrides: dict[str, Any], why: str
) -> None:
    await redis.set("risk:exposure", stored)
    verdict = await judge(redis, **overrides)
    assert verdict.status is Status.UNKNOWN
    assert verdict.reason == f"{verdict.subject}: {why}"


async def test_wrong_type_is_unknown(redis: Redis) -> None:
    await redis.lpush("risk:exposure", "1")
    verdict = await judge(redis)
    assert verdict.status is Status.UNKNOWN
    assert verdict.reason.startswith("risk:exposure: redis error: ResponseError: WRONGTYPE")


async def test_unreachable_redis_is_unknown() -> None:
    client = connect(RedisSection.model_validate({"url": "redis://127.0.0.1:1/0"}), "test")
    try:
        verdicts = await evaluate(watchdog(client), None, time.time())
    finally:
        await client.aclose()
    assert [v.status for v in verdicts] == [Status.UNKNOWN]
    assert verdicts[0].reason.startswith("redis: ConnectionError")


def test_config_refuses_field_and_json_field() -> None:
    with pytest.raises(ValidationError, match="at most one of 'field' and 'json_field'"):
        RedisValueConfig.model_validate(
            {"name": "v", "kind": "redis_value", "key": "k", "breach": 1, "field": "a"}
            | {"json_field": "b"}
        )

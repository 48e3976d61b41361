"""tick_freshness against a real redis-server: every timestamp layout, each status."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

import pytest
from redis.asyncio import Redis

from supervisor.model import Status, Verdict
from supervisor.sessions import Session
from supervisor.watchdogs.base import evaluate
from supervisor.watchdogs.tick_freshness import TickFreshness, TickFreshnessConfig

pytestmark = pytest.mark.anyio


def watchdog(redis: Redis, **overrides: Any) -> TickFreshness:
    fields: dict[str, Any] = {
        "name": "ticks",
        "kind": "tick_freshness",
        "key": "ticks:last:{instrument}",
        "instruments": ["SPX", "ES"],
        "warn": "10s",
        "breach": "15s",
        "critical": "60s",
    }
    return TickFreshness(TickFreshnessConfig.model_validate({**fields, **overrides}), redis)


def by_subject(verdicts: Sequence[Verdict]) -> dict[str, Verdict]:
    return {v.subject: v for v in verdicts}


@pytest.mark.parametrize(
    ("written", "age_s"),
    [
        (lambda t: str(int(t - 3)), 3.0),  # epoch seconds
        (lambda t: str(int((t - 3) * 1e3)), 3.0),  # ms
        (lambda t: str(int((t - 3) * 1e6)), 3.0),  # us
        (lambda t: str(int((t - 3) * 1e9)), 3.0),  # ns
        (lambda t: f"{t - 3:.6f}", 3.0),  # fractional seconds
        (lambda t: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t - 12)), 12.0),  # ISO
    ],
)
async def test_plain_value_formats(redis: Redis, written: Any, age_s: float) -> None:
    now = time.time()
    await redis.set("ticks:last:SPX", written(now))
    await redis.set("ticks:last:ES", str(int(now * 1000)))
    verdicts = by_subject(await watchdog(redis).check(now, None))
    assert verdicts["SPX"].value == pytest.approx(age_s, abs=1.0)
    assert verdicts["SPX"].status is (Status.WARN if age_s > 10 else Status.OK)
    assert verdicts["ES"].status is Status.OK


async def test_each_status_and_its_reason(redis: Redis) -> None:
    now = time.time()
    ages = {"A": 1, "B": 11, "C": 16.5, "D": 61}
    for name, age in ages.items():
        await redis.set(f"ticks:last:{name}", str(now - age))
    verdicts = by_subject(await watchdog(redis, instruments=list(ages)).check(now, None))
    assert [verdicts[n].status for n in ages] == [
        Status.OK,
        Status.WARN,
        Status.BREACH,
        Status.CRITICAL,
    ]
    assert verdicts["C"].reason == "C age 16.5s > 15s"


async def test_missing_key_is_a_breach_and_garbage_is_unknown(redis: Redis) -> None:
    await redis.set("ticks:last:ES", b"\xff\xfe not a time")
    verdicts = by_subject(await watchdog(redis).check(time.time(), None))
    assert verdicts["SPX"].status is Status.BREACH
    assert "no tick" in verdicts["SPX"].reason
    assert verdicts["ES"].status is Status.UNKNOWN
    assert "unreadable tick timestamp" in verdicts["ES"].reason


async def test_future_timestamp_is_unknown_not_fresh(redis: Redis) -> None:
    now = time.time()
    await redis.set("ticks:last:SPX", str(now + 3600))
    await redis.set("ticks:last:ES", str(now + 1))  # within max_future: clocks differ a little
    verdicts = by_subject(await watchdog(redis).check(now, None))
    assert verdicts["SPX"].status is Status.UNKNOWN
    assert "in the future" in verdicts["SPX"].reason
    assert verdicts["ES"].status is Status.OK


async def test_hash_field(redis: Redis) -> None:
    now = time.time()
    await redis.hset("ticks:last:SPX", mapping={"ts": str(now - 20), "px": "5000"})
    await redis.hset("ticks:last:ES", mapping={"px": "5000"})
    verdicts = by_subject(await watchdog(redis, field="ts").check(now, None))
    assert verdicts["SPX"].status is Status.BREACH
    assert verdicts["ES"].status is Status.BREACH
    assert "field 'ts' missing" in verdicts["ES"].reason


async def test_json_field_with_jmespath(redis: Redis) -> None:
    now = time.time()
    await redis.set("ticks:last:SPX", json.dumps({"meta": {"ts": (now - 2) * 1000}}))
    await redis.set("ticks:last:ES", json.dumps({"meta": {}}))
    verdicts = by_subject(await watchdog(redis, json_field="meta.ts").check(now, None))
    assert verdicts["SPX"].status is Status.OK
    assert verdicts["SPX"].value == pytest.approx(2.0, abs=0.1)
    assert verdicts["ES"].status is Status.UNKNOWN


async def test_stream_entry_id_and_field(redis: Redis) -> None:
    now = time.time()
    await redis.xadd("ticks:last:SPX", {"px": "1"}, id=f"{int((now - 20) * 1000)}-0")
    await redis.xadd("ticks:last:ES", {"px": "1"}, id=f"{int((now - 1) * 1000)}-0")
    verdicts = by_subject(await watchdog(redis, stream=True).check(now, None))
    assert verdicts["SPX"].status is Status.BREACH
    assert verdicts["ES"].status is Status.OK
    await redis.xadd("ticks:last:ES", {"ts": str(now - 30)})
    verdicts = by_subject(await watchdog(redis, stream=True, field="ts").check(now, None))
    assert verdicts["ES"].status is Status.BREACH
    assert verdicts["SPX"].status is Status.BREACH  # newest entry has no 'ts'


async def test_wrong_type_key_is_unknown_for_that_instrument_only(redis: Redis) -> None:
    now = time.time()
    await redis.lpush("ticks:last:SPX", "x")
    await redis.set("ticks:last:ES", str(now))
    verdicts = by_subject(await watchdog(redis).check(now, None))
    assert verdicts["SPX"].status is Status.UNKNOWN
    assert "WRONGTYPE" in verdicts["SPX"].reason
    assert verdicts["ES"].status is Status.OK


async def test_deadline_is_when_the_next_threshold_is_crossed(redis: Redis) -> None:
    now = time.time()
    await redis.set("ticks:last:SPX", str(now - 12))
    await redis.set("ticks:last:ES", str(now - 100))
    verdicts = by_subject(await watchdog(redis).check(now, None))
    assert verdicts["SPX"].deadline == pytest.approx(now - 12 + 15, abs=0.01)
    assert verdicts["ES"].deadline is None  # already CRITICAL: nothing worse to wait for


async def test_age_counts_from_session_open(redis: Redis) -> None:
    now = time.time()
    await redis.set("ticks:last:SPX", str(now - 3600))  # yesterday's last tick
    await redis.set("ticks:last:ES", str(now - 3600))
    verdicts = by_subject(await watchdog(redis).check(now, now - 5))
    assert verdicts["SPX"].status is Status.OK
    assert verdicts["SPX"].value == pytest.approx(5.0, abs=0.1)
    assert "session opened" in verdicts["SPX"].reason


async def test_closed_session_is_ok_without_reading(redis: Redis) -> None:
    from supervisor.config.sections import SessionConfig

    never: Session = SessionConfig.model_validate(
        {"timezone": "UTC", "days": ["mon"], "open": "00:00", "close": "00:01", "holidays": []}
    ).build("tiny")
    wednesday_noon = 1795003200.0  # 2026-11-18 12:00 UTC: the session only opens on Mondays
    verdicts = await evaluate(watchdog(redis), never, wednesday_noon)
    assert {v.status for v in verdicts} == {Status.OK}
    assert verdicts[0].reason == "session closed (tiny)"


async def test_unreachable_redis_is_unknown_with_a_reason() -> None:
    from supervisor.config.sections import RedisSection
    from supervisor.sources.redis import connect

    section = RedisSection.model_validate({"url": "redis://127.0.0.1:1/0", "timeout": 0.5})
    client = connect(section, "test")
    try:
        verdicts = await evaluate(watchdog(client), None, time.time())
    finally:
        await client.aclose()
    assert {v.status for v in verdicts} == {Status.UNKNOWN}
    assert verdicts[0].reason.startswith("redis: ConnectionError")

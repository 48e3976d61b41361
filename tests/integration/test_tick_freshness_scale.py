"""tick_freshness at scale against a real redis-server: thousands of instruments in batches,
every layout, batch boundaries, missing keys, garbage, and deadline re-runs that read only
what came due (counted with INFO commandstats). No timing is asserted here: benchmarks/."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

import pytest
from redis.asyncio import Redis

from supervisor.model import Status, Verdict, Verdicts
from supervisor.watchdogs.tick_freshness import TickFreshness, TickFreshnessConfig
from supervisor.watchdogs.tick_reads import BATCH, SCRIPT_BATCH, STREAM_BATCH

pytestmark = pytest.mark.anyio

LAYOUTS = ["plain", "field", "json_field", "stream", "stream_field"]


def watchdog(redis: Redis, instruments: Sequence[str], **overrides: Any) -> TickFreshness:
    fields: dict[str, Any] = {
        "name": "ticks",
        "kind": "tick_freshness",
        "key": "t:{instrument}",
        "instruments": list(instruments),
        "warn": "10s",
        "breach": "15s",
        "critical": "60s",
    }
    return TickFreshness(TickFreshnessConfig.model_validate({**fields, **overrides}), redis)


def names(count: int) -> list[str]:
    return [f"I{i:06d}" for i in range(count)]


def statuses(verdicts: Sequence[Verdict]) -> dict[str, Status]:
    return {v.subject: v.status for v in verdicts}


async def write_ticks(redis: Redis, ticks: dict[str, float], layout: str = "plain") -> None:
    """Each instrument's tick at the given epoch time, in `layout`."""
    async with redis.pipeline(transaction=False) as pipe:
        for instrument, at in ticks.items():
            key = f"t:{instrument}"
            if layout == "plain":
                pipe.set(key, str(int(at * 1000)))
            elif layout == "field":
                pipe.hset(key, mapping={"ts": f"{at:.3f}", "px": "1"})
            elif layout == "json_field":
                pipe.set(key, json.dumps({"meta": {"ts": at}}))
            elif layout == "stream":
                pipe.xadd(key, {"px": "1"}, id=f"{int(at * 1000)}-0")
            else:
                pipe.xadd(key, {"ts": f"{at:.3f}", "px": "1"})
        await pipe.execute()


LAYOUT_OPTIONS: dict[str, dict[str, Any]] = {
    "plain": {},
    "field": {"field": "ts"},
    "json_field": {"json_field": "meta.ts"},
    "stream": {"stream": True},
    "stream_field": {"stream": True, "field": "ts"},
}


async def reads_counted(redis: Redis) -> tuple[dict[str, int], int]:
    """(calls per read command, keys looked up) since the last CONFIG RESETSTAT."""
    commands = await redis.info("commandstats")
    stats = await redis.info("stats")
    calls = {
        name.removeprefix("cmdstat_"): int(value["calls"])
        for name, value in commands.items()
        if name.removeprefix("cmdstat_") in {"get", "mget", "hget", "xrevrange", "eval"}
    }
    return calls, int(stats["keyspace_hits"]) + int(stats["keyspace_misses"])


async def test_ten_thousand_instruments_one_stale_is_exactly_that_one_breach(
    redis: Redis,
) -> None:
    now = time.time()
    instruments = names(10_000)
    ticks = {i: now - 1 for i in instruments}
    ticks["I004321"] = now - 20
    await write_ticks(redis, ticks)
    verdicts = await watchdog(redis, instruments).check(now, None)
    assert isinstance(verdicts, Verdicts)
    assert len(verdicts) == 10_000
    assert verdicts.counts[Status.OK] == 9_999
    assert verdicts.counts[Status.BREACH] == 1
    (stale,) = verdicts.unusual.values()
    assert (stale.subject, stale.status, stale.reason) == (
        "I004321",
        Status.BREACH,
        "I004321 age 20.0s > 15s",
    )
    assert verdicts.max_value == pytest.approx(20, abs=0.01)
    assert verdicts.earliest_deadline == pytest.approx(
        now - 1 + 10, abs=0.01
    )  # the fresh ones' warn
    assert [v.subject for v in verdicts] == instruments  # in order, OK ones built on demand
    assert verdicts[17].reason == "I000017 age 1.00s"  # the reason the full judgement gives


@pytest.mark.parametrize("layout", LAYOUTS)
async def test_batches_split_at_their_boundaries_in_every_layout(redis: Redis, layout: str) -> None:
    now = time.time()
    count = 2 * BATCH + 1
    instruments = names(count)
    edges = (0, STREAM_BATCH, SCRIPT_BATCH - 1, SCRIPT_BATCH, BATCH - 1, BATCH, 2 * BATCH)
    stale = {instruments[i] for i in edges}
    missing = {instruments[i] for i in (1, STREAM_BATCH - 1, SCRIPT_BATCH + 1, 2 * BATCH - 1)}
    ticks = {i: (now - 30 if i in stale else now - 2) for i in instruments if i not in missing}
    await write_ticks(redis, ticks, layout)
    verdicts = statuses(
        await watchdog(redis, instruments, **LAYOUT_OPTIONS[layout]).check(now, None)
    )
    expected = {i: Status.OK for i in instruments}
    expected.update(dict.fromkeys(stale, Status.BREACH))
    expected.update(dict.fromkeys(missing, Status.BREACH))
    assert verdicts == expected


async def test_missing_keys_wrong_types_and_garbage_mixed_in_a_large_read(redis: Redis) -> None:
    now = time.time()
    instruments = names(3 * BATCH)
    await write_ticks(redis, {i: now - 1 for i in instruments})
    odd = {
        "I000005": b"not a time",
        "I000777": b"",
        "I001000": b"1_700_000_000",
        "I001500": str(now + 3600).encode(),  # in the future: clock skew, never fresh
        "I001501": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 12)).encode(),
        "I001502": f"{now - 3:.6f}".encode(),  # fractional seconds
        "I001503": str(int((now - 4) * 1e6)).encode(),  # microseconds
        "I002999": json.dumps({"ts": now}).encode(),
    }
    for instrument, raw in odd.items():
        await redis.set(f"t:{instrument}", raw)
    await redis.delete("t:I000000", "t:I002000", "t:I001999")
    await redis.lpush("t:I001999", "x")  # a list where a string should be
    verdicts = await watchdog(redis, instruments).check(now, None)
    by = {v.subject: v for v in verdicts}
    for instrument in ("I000005", "I000777", "I001000", "I002999"):
        assert by[instrument].status is Status.UNKNOWN
        assert "unreadable tick timestamp" in by[instrument].reason
    assert by["I001500"].status is Status.UNKNOWN and "clock skew" in by["I001500"].reason
    assert by["I001501"].status is Status.WARN
    assert by["I001502"].status is Status.OK and by["I001502"].value == pytest.approx(3, abs=0.01)
    assert by["I001503"].status is Status.OK and by["I001503"].value == pytest.approx(4, abs=0.01)
    for instrument in ("I000000", "I002000"):
        assert (by[instrument].status, by[instrument].reason) == (
            Status.BREACH,
            f"{instrument}: no tick (key missing)",
        )
    assert by["I001999"].status is Status.UNKNOWN and "WRONGTYPE" in by["I001999"].reason
    assert verdicts.counts[Status.OK] == len(instruments) - 9


async def test_a_deadline_re_run_reads_only_the_instrument_that_came_due(redis: Redis) -> None:
    now = time.time()
    instruments = names(1_000)
    ticks = {i: now - 0.5 for i in instruments}
    ticks["I000500"] = now - 9.0  # warns in one second
    await write_ticks(redis, ticks)
    dog = watchdog(redis, instruments)
    first = await dog.check(now, None)
    assert first.earliest_deadline is not None
    deadline = first.earliest_deadline
    assert deadline == pytest.approx(now + 1.0, abs=0.01)

    await redis.config_resetstat()
    again = await dog.recheck(deadline, None)
    calls, keys = await reads_counted(redis)
    assert calls == {"mget": 1}
    assert keys == 1  # one key read, not a thousand
    assert statuses(again) == {
        i: (Status.WARN if i == "I000500" else Status.OK) for i in instruments
    }
    assert again[0].value == pytest.approx(deadline - (now - 0.5), abs=0.01)  # aged since


async def test_a_deadline_re_run_takes_a_fresh_tick_and_moves_the_next_deadline(
    redis: Redis,
) -> None:
    now = time.time()
    instruments = names(1_000)
    ticks = {i: now - 0.5 for i in instruments}
    ticks["I000007"] = now - 9.0
    await write_ticks(redis, ticks)
    dog = watchdog(redis, instruments)
    deadline = (await dog.check(now, None)).earliest_deadline
    assert deadline is not None
    await write_ticks(redis, {"I000007": deadline - 0.1})  # the feed came back meanwhile
    again = await dog.recheck(deadline, None)
    assert again.counts[Status.OK] == 1_000
    assert again.earliest_deadline == pytest.approx(now - 0.5 + 10, abs=0.01)


async def test_a_re_run_before_anything_is_due_reads_nothing(redis: Redis) -> None:
    now = time.time()
    instruments = names(100)
    await write_ticks(redis, {i: now for i in instruments})
    dog = watchdog(redis, instruments)
    await dog.check(now, None)
    await redis.config_resetstat()
    again = await dog.recheck(now + 0.5, None)
    assert await reads_counted(redis) == ({}, 0)
    assert again.counts[Status.OK] == 100


@pytest.mark.parametrize("opened_before", [None, "different"])
async def test_a_re_run_without_a_reading_of_this_session_reads_everything(
    redis: Redis, opened_before: str | None
) -> None:
    now = time.time()
    instruments = names(100)
    await write_ticks(redis, {i: now for i in instruments})
    dog = watchdog(redis, instruments)
    if opened_before is not None:
        await dog.check(now, now - 3600)  # a reading of yesterday's session
    await redis.config_resetstat()
    await dog.recheck(now + 0.5, now - 60)
    assert (await reads_counted(redis))[1] == 100


async def test_a_failed_read_leaves_nothing_to_merge_into(redis: Redis) -> None:
    now = time.time()
    instruments = names(10)
    await write_ticks(redis, {i: now - 9.5 for i in instruments})
    dog = watchdog(redis, instruments)
    await dog.check(now, None)
    dog.redis = Redis.from_url("redis://127.0.0.1:1/0")  # Redis gone for the next check
    try:
        with pytest.raises(Exception, match="redis"):
            await dog.check(now + 1, None)
    finally:
        await dog.redis.aclose()
    dog.redis = redis
    await redis.config_resetstat()
    await dog.recheck(now + 1, None)  # a full read: the last one did not complete
    assert (await reads_counted(redis))[1] == 10


async def test_many_missing_keys_are_told_apart_from_wrong_types(redis: Redis) -> None:
    now = time.time()
    instruments = names(BATCH + SCRIPT_BATCH + 10)
    present = set(instruments[::3])  # two in three missing: more than one batch re-read
    await write_ticks(redis, {i: now - 1 for i in present})
    wrong = instruments[3 * SCRIPT_BATCH // 2 + 1]  # among the second batch of re-reads
    await redis.sadd(f"t:{wrong}", "x")
    verdicts = {v.subject: v for v in await watchdog(redis, instruments).check(now, None)}
    for instrument in instruments:
        verdict = verdicts[instrument]
        if instrument in present:
            assert verdict.status is Status.OK
        elif instrument == wrong:
            assert verdict.status is Status.UNKNOWN and "WRONGTYPE" in verdict.reason
        else:
            assert (verdict.status, verdict.reason) == (
                Status.BREACH,
                f"{instrument}: no tick (key missing)",
            )


@pytest.mark.parametrize("layout", ["field", "stream"])
async def test_a_deadline_re_run_reads_one_key_in_the_per_key_layouts(
    redis: Redis, layout: str
) -> None:
    now = time.time()
    instruments = names(1_000)
    ticks = {i: now - 0.5 for i in instruments}
    ticks["I000999"] = now - 9.0
    await write_ticks(redis, ticks, layout)
    dog = watchdog(redis, instruments, **LAYOUT_OPTIONS[layout])
    deadline = (await dog.check(now, None)).earliest_deadline
    assert deadline is not None
    await redis.config_resetstat()
    again = await dog.recheck(deadline, None)
    calls, keys = await reads_counted(redis)
    assert calls.get("eval") == 1 and keys == 1
    assert again.counts[Status.WARN] == 1

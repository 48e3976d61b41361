"""lock_ttl against a real redis-server: orphans, stuck owners, missing owners, progress."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import pytest
from redis.asyncio import Redis

from supervisor.constants import DEADLINE_EPSILON_S
from supervisor.model import Remedy, Status, Verdict
from supervisor.remedies import RELEASE_ORPHAN, release_orphan
from supervisor.watchdogs.lock_ttl import LockTtl, LockTtlConfig

pytestmark = pytest.mark.anyio

STREAM = "massive:tick:stream:lock"
SNAPSHOT = "spx_command_center:snapshot:build:lock:v1"
TOKEN = "sup-a-0123456789abcdef-token"


def watchdog(redis: Redis, **overrides: Any) -> LockTtl:
    fields: dict[str, Any] = {
        "name": "stream_locks",
        "kind": "lock_ttl",
        "keys": [STREAM, SNAPSHOT],
        "max_ttl": "60s",
        "max_hold": "5m",
        "require_owner": [STREAM],
    }
    config = LockTtlConfig.model_validate({**fields, **overrides})
    return LockTtl(config, redis)


def by_subject(verdicts: Sequence[Verdict]) -> dict[str, Verdict]:
    return {v.subject: v for v in verdicts}


async def test_held_lock_is_ok_with_its_ttl_and_a_shortened_owner(redis: Redis) -> None:
    await redis.set(STREAM, TOKEN, px=30_000)
    now = time.time()
    verdicts = by_subject(await watchdog(redis).check(now, None))
    held, free = verdicts[STREAM], verdicts[SNAPSHOT]
    assert held.status is Status.OK
    assert held.value == pytest.approx(30.0, abs=0.5)
    assert held.unit == "s"
    assert held.threshold == 60.0
    assert held.reason.startswith(f"{STREAM}: held by 'sup-a-012345'… for 0ms, TTL ")
    assert TOKEN not in held.reason
    assert held.deadline == pytest.approx(now + 300 + DEADLINE_EPSILON_S)
    assert (free.status, free.reason, free.value) == (Status.OK, f"{SNAPSHOT}: not held", None)


async def test_lock_with_no_ttl_is_an_orphan_breach(redis: Redis) -> None:
    await redis.set(STREAM, TOKEN)
    verdict = by_subject(await watchdog(redis).check(time.time(), None))[STREAM]
    assert verdict.status is Status.BREACH
    assert verdict.value == -1.0
    assert verdict.reason == (
        f"{STREAM}: no expiry (PTTL -1): an orphan that never expires (owner 'sup-a-012345'…)"
    )
    assert await redis.get(STREAM) == TOKEN.encode()  # release_orphans is off by default


async def test_ttl_above_max_ttl_is_a_breach(redis: Redis) -> None:
    await redis.set(SNAPSHOT, "builder-1", ex=3600)
    verdict = by_subject(await watchdog(redis).check(time.time(), None))[SNAPSHOT]
    assert verdict.status is Status.BREACH
    assert verdict.threshold == 60.0
    assert "TTL 60.0m > max_ttl 60s" in verdict.reason
    assert verdict.reason.endswith("(owner 'builder-1')")


async def test_lock_renewed_forever_by_one_owner_is_a_stuck_owner(redis: Redis) -> None:
    dog = watchdog(redis)
    t0 = time.time()
    for offset in (0.0, 60.0, 120.0, 299.0):  # the owner keeps renewing, same value
        await redis.set(STREAM, TOKEN, px=30_000)
        verdict = by_subject(await dog.check(t0 + offset, None))[STREAM]
        assert verdict.status is Status.OK, verdict.reason
        assert verdict.deadline == pytest.approx(t0 + 300 + DEADLINE_EPSILON_S)
    await redis.set(STREAM, TOKEN, px=30_000)
    verdict = by_subject(await dog.check(t0 + 330, None))[STREAM]
    assert verdict.status is Status.BREACH
    assert verdict.threshold == 300.0
    assert "held by the same owner for 5.5m > max_hold 5.0m: a stuck owner" in verdict.reason
    await redis.set(STREAM, "sup-b-new-owner", px=30_000)  # a new owner: the count restarts
    verdict = by_subject(await dog.check(t0 + 331, None))[STREAM]
    assert verdict.status is Status.OK
    assert verdict.deadline == pytest.approx(t0 + 631 + DEADLINE_EPSILON_S)


async def test_key_disappearing_resets_the_hold_count(redis: Redis) -> None:
    dog = watchdog(redis, require_owner=[])
    t0 = time.time()
    await redis.set(STREAM, TOKEN, px=30_000)
    await dog.check(t0, None)
    await redis.delete(STREAM)
    assert by_subject(await dog.check(t0 + 200, None))[STREAM].status is Status.OK
    await redis.set(STREAM, TOKEN, px=30_000)  # the same value again: a fresh hold
    assert by_subject(await dog.check(t0 + 400, None))[STREAM].status is Status.OK


async def test_missing_required_lock_is_a_breach(redis: Redis) -> None:
    verdicts = by_subject(await watchdog(redis).check(time.time(), None))
    assert verdicts[STREAM].status is Status.BREACH
    assert verdicts[STREAM].reason == (
        f"{STREAM}: missing: nobody holds this lock, and an owner is required"
    )
    assert verdicts[SNAPSHOT].status is Status.OK


async def test_ttl_renewed_between_every_check_breaches_min_ttl_progress(redis: Redis) -> None:
    dog = watchdog(redis, max_hold=None, min_ttl_progress="10s")
    t0 = time.time()
    await redis.set(STREAM, TOKEN, px=30_000)
    assert by_subject(await dog.check(t0, None))[STREAM].status is Status.OK
    await redis.pexpire(STREAM, 30_000)  # 5 s later by our clock, and the TTL is full again
    verdict = by_subject(await dog.check(t0 + 5, None))[STREAM]
    assert verdict.status is Status.OK
    assert verdict.deadline == pytest.approx(t0 + 10 + DEADLINE_EPSILON_S)
    await redis.pexpire(STREAM, 30_000)
    verdict = by_subject(await dog.check(t0 + 10.5, None))[STREAM]
    assert verdict.status is Status.BREACH
    assert "TTL not counting down for 10.5s > min_ttl_progress 10s" in verdict.reason


async def test_ttl_counting_down_between_renewals_is_healthy(redis: Redis) -> None:
    dog = watchdog(redis, max_hold=None, min_ttl_progress="10s")
    t0 = time.time()
    await redis.set(STREAM, TOKEN, px=30_000)
    await dog.check(t0, None)
    for step in range(1, 30):
        renewed = step % 3 == 0  # a healthy owner renews every third check
        await redis.pexpire(STREAM, 30_000 if renewed else 30_000 - (step % 3) * 4_000)
        verdict = by_subject(await dog.check(t0 + 4 * step, None))[STREAM]
        assert verdict.status is Status.OK, verdict.reason


async def test_check_proposes_releasing_an_orphan_and_never_releases_it(redis: Redis) -> None:
    await redis.set(STREAM, TOKEN)
    await redis.set(SNAPSHOT, "builder-1", px=30_000)
    dog = watchdog(redis, release_orphans=True)
    verdicts = by_subject(await dog.check(time.time(), None))
    assert verdicts[STREAM].status is Status.BREACH
    assert await redis.get(STREAM) == TOKEN.encode()  # a watchdog judges, it does not act
    assert dog.remedies() == [Remedy("stream_locks", RELEASE_ORPHAN, STREAM, TOKEN.encode())]


async def test_no_remedy_unless_release_orphans_is_set(redis: Redis) -> None:
    await redis.set(STREAM, TOKEN)
    dog = watchdog(redis)
    await dog.check(time.time(), None)
    assert dog.remedies() == []


async def test_release_never_deletes_a_lock_that_changed(redis: Redis) -> None:
    owner = TOKEN.encode()
    await redis.set(STREAM, "someone-else")
    assert await release_orphan(redis, STREAM, owner) == "skipped: owner changed"
    await redis.set(STREAM, TOKEN, px=30_000)
    assert await release_orphan(redis, STREAM, owner) == "skipped: expiry now set"
    assert await redis.get(STREAM) == owner
    await redis.delete(STREAM)
    assert await release_orphan(redis, STREAM, owner) == "already gone"
    await redis.set(STREAM, TOKEN)
    assert await release_orphan(redis, STREAM, owner) == "released"
    assert await redis.exists(STREAM) == 0

"""The shared client through Redis Sentinel (testbed/sentinel.py: a primary, a replica, three
sentinels): it finds the master, follows a failover without being rebuilt, its Lua scripts
survive a master that never saw them, and a write to a demoted master is Redis trouble."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from redis import Redis as SyncRedis
from redis.asyncio import Redis
from redis.asyncio.sentinel import MasterNotFoundError
from redis.exceptions import ReadOnlyError

from supervisor.actuators.base import ActionContext
from supervisor.actuators.redis_breaker import TRIP_SCRIPT, RedisBreaker, RedisBreakerConfig
from supervisor.config.sections import RedisSection
from supervisor.daemon.context import REDIS_TROUBLE
from supervisor.model import Decision, Status
from supervisor.sources.redis import connect
from supervisor.watchdogs.base import evaluate
from supervisor.watchdogs.tick_freshness import TickFreshness, TickFreshnessConfig
from testbed.certificates import make_certificates
from testbed.sentinel import SentinelSetup, running_sentinels
from testbed.waiting import free_port

pytestmark = pytest.mark.anyio


@pytest.fixture
def sentinels(tmp_path: Path) -> Iterator[SentinelSetup]:
    with running_sentinels(tmp_path) as setup:
        yield setup


def client_of(url: str, name: str = "sentinel-test") -> Redis:
    return connect(RedisSection.model_validate({"url": url, "timeout": "300ms"}), name)


def breaker(redis: Redis) -> RedisBreaker:
    config = RedisBreakerConfig.model_validate({"kind": "redis_breaker"})
    return RedisBreaker("breaker", config, redis)


def decision() -> Decision:
    return Decision("w", Status.BREACH, ("breaker",), "stale", "inc-1", time.time())


def names(direct: SyncRedis) -> set[str]:
    """The client names connected to one server."""
    return {client["name"] for client in direct.client_list()}


async def until(predicate: Callable[[], Awaitable[bool]], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not await predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_the_client_finds_the_master_and_follows_a_failover(
    sentinels: SentinelSetup,
) -> None:
    client = client_of(sentinels.url)
    old = sentinels.master()
    try:
        await client.set("k", "before")
        with sentinels.client(old) as direct:
            assert direct.get("k") == b"before"
            assert "sentinel-test" in names(direct)

        new = await asyncio.to_thread(sentinels.failover)
        failed_over_at = time.monotonic()
        # The old master is still a writable master for ~10 s: writes must reach the new one.
        with sentinels.client(new) as direct:

            async def lands_on_new() -> bool:
                await client.set("k", "after")
                return bool(direct.get("k") == b"after")

            await until(lands_on_new, 3)
            followed_in = time.monotonic() - failed_over_at
            assert "sentinel-test" in names(direct)
        print(f"writes reached the new master {followed_in:.2f}s after the sentinels named it")
        assert followed_in < 1.5
    finally:
        await client.aclose()


async def test_the_breaker_script_runs_on_a_master_that_never_saw_it(
    sentinels: SentinelSetup,
) -> None:
    """EVALSHA answers NOSCRIPT on a server whose script cache never held it (scripts are not
    replicated): redis-py's Script loads it there and runs it again."""
    client = client_of(sentinels.url)
    try:
        trip = breaker(client)
        context = ActionContext(instance_id="t", now=time.time())
        await trip.engage(decision(), context)  # loads TRIP_SCRIPT on the first master
        await client.delete("circuit_breaker:state")
        new = await asyncio.to_thread(sentinels.failover)
        with sentinels.client(new) as direct:
            sha = hashlib.sha1(TRIP_SCRIPT.encode()).hexdigest()  # what EVALSHA names
            assert direct.script_exists(sha) == [False]

            async def tripped_on_new() -> bool:
                try:
                    await trip.engage(decision(), ActionContext(instance_id="t", now=time.time()))
                except REDIS_TROUBLE:
                    return False  # a connection to the old master, dropped: the next one works
                return direct.get("circuit_breaker:state") is not None

            await until(tripped_on_new, 5)
            assert direct.script_exists(sha) == [True]
    finally:
        await client.aclose()


async def test_a_write_to_a_demoted_master_is_redis_trouble(sentinels: SentinelSetup) -> None:
    """A plain client left on a server that became a replica: READONLY is a ResponseError
    (ReadOnlyError), hence RedisError, hence REDIS_TROUBLE for the daemon (logged, DEGRADED,
    never a crash); reads still work, so a watchdog reading there is not even UNKNOWN."""
    replica = next(s for s in sentinels.servers if s is not sentinels.master())
    client = client_of(f"redis://127.0.0.1:{replica.port}/0")
    with sentinels.client(sentinels.master()) as primary:
        primary.set("ticks:SPX", f"{time.time():.3f}")
        primary.wait(1, 2000)  # replicated
    try:
        with pytest.raises(ReadOnlyError) as caught:
            await breaker(client).engage(decision(), ActionContext(instance_id="t", now=0.0))
        assert isinstance(caught.value, REDIS_TROUBLE)
        config = TickFreshnessConfig.model_validate(
            {
                "name": "ticks",
                "kind": "tick_freshness",
                "key": "ticks:{instrument}",
                "instruments": ["SPX"],
                "breach": "10s",
            }
        )
        verdicts = await evaluate(TickFreshness(config, client), None, time.time())
        assert [v.status for v in verdicts] == [Status.OK]
    finally:
        await client.aclose()


async def test_with_every_sentinel_gone_the_known_master_is_kept(
    sentinels: SentinelSetup,
) -> None:
    client = client_of(sentinels.url)
    try:
        await client.set("k", "1")
        for sentinel in sentinels.sentinels:
            sentinel.stop()
        for _ in range(10):  # several background asks fail meanwhile
            assert await client.incr("n") >= 1
            await asyncio.sleep(0.1)
    finally:
        await client.aclose()


async def test_rediss_sentinel_is_tls_to_the_sentinels_and_the_master(tmp_path: Path) -> None:
    certificates = make_certificates(tmp_path, "sentinel")
    with running_sentinels(tmp_path / "setup", tls=certificates) as setup:
        assert setup.url.startswith("rediss+sentinel://")
        client = client_of(setup.url)
        try:
            await client.set("k", "over TLS")
            with setup.client(setup.master()) as direct:
                assert direct.get("k") == b"over TLS"
            plain = client_of(setup.url.replace("rediss+", "redis+").partition("?")[0])
            with pytest.raises(REDIS_TROUBLE):
                await plain.get("k")  # the sentinels accept TLS only
            await plain.aclose()
        finally:
            await client.aclose()


async def test_no_sentinel_answering_is_one_short_line_without_the_password() -> None:
    """redis-py's own message appends the repr of every sentinel client it could not ask."""
    port = free_port()
    client = connect(
        RedisSection.model_validate(
            {
                "url": f"redis+sentinel://u:master-pw@127.0.0.1:{port}/trading",
                "sentinel_password": "sentinel-pw",
                "timeout": "300ms",
            }
        ),
        "t",
    )
    try:
        with pytest.raises(MasterNotFoundError) as caught:
            await client.get("k")
        assert str(caught.value) == (
            "No master found for 'trading' (asked 1 sentinels: not every one answered)"
        )
    finally:
        await client.aclose()

"""Pre-packed pipelined reads (supervisor/sources/redis.py `pack`, `send`) on a real Redis."""

from __future__ import annotations

import anyio
import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from supervisor.config.sections import RedisSection
from supervisor.errors import SourceError
from supervisor.sources.redis import connect, pack, send
from testbed.redis_server import RedisServer

pytestmark = pytest.mark.anyio


async def test_replies_come_back_in_order_with_errors_as_values(redis: Redis) -> None:
    await redis.set("a", "1")
    await redis.set("ünï", "ü")
    await redis.lpush("list", "x")
    packed = pack([[("GET", "a"), ("GET", "ünï")], [("GET", b"list"), ("MGET", "a", "nope", 7)]])
    assert packed.replies == 4
    replies = await send(redis, packed)
    assert replies[:2] == [b"1", "ü".encode()]
    assert isinstance(replies[2], ResponseError) and "WRONGTYPE" in str(replies[2])
    assert replies[3] == [b"1", None, None]


async def test_a_large_pipeline_reads_every_reply(redis: Redis) -> None:
    await redis.mset({f"k{i}": str(i) for i in range(5000)})
    batches = [
        [("GET", f"k{i}") for i in range(start, start + 1000)] for start in range(0, 5000, 1000)
    ]
    replies = await send(redis, pack(batches))
    assert replies == [str(i).encode() for i in range(5000)]


async def test_unreachable_redis_is_a_source_error() -> None:
    client = connect(RedisSection.model_validate({"url": "redis://127.0.0.1:1/0"}), "t")
    try:
        with pytest.raises(SourceError, match="redis: ConnectionError"):
            await send(client, pack([[("GET", "a")]]))
    finally:
        await client.aclose()


async def test_a_stale_pooled_connection_is_retried_after_a_restart(
    private_redis: RedisServer,
) -> None:
    client = connect(RedisSection.model_validate({"url": private_redis.url}), "t")
    try:
        await client.set("a", "1")
        assert await send(client, pack([[("GET", "a")]])) == [b"1"]
        private_redis.stop()
        private_redis.start()  # the pooled connection is now dead
        assert await send(client, pack([[("GET", "a")]])) == [None]
    finally:
        await client.aclose()


async def test_a_read_cut_off_halfway_leaves_no_reply_for_the_next_one(redis: Redis) -> None:
    # 20 MB of replies: more than a socket buffers, so the read has to wait for the rest and
    # the cut lands in the middle of it.
    await redis.mset({f"k{i}": f"{i:<20000}" for i in range(1000)})
    everything = pack([[("GET", f"k{i}") for i in range(1000)]])
    with anyio.move_on_after(0.005) as scope:
        await send(redis, everything)
    assert scope.cancelled_caught
    await redis.set("probe", "mine")
    assert await send(redis, pack([[("GET", "probe")]])) == [b"mine"]
    assert await redis.get("k5") == f"{5:<20000}".encode()

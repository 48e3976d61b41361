"""Setting unreadable entries aside and recovering counters needs no command outside the
shipped ACL (deploy/redis/supervisor.acl): as the `supervisor` user, over garbage planted in
every kind of key, Redis refuses nothing (`ACL LOG` stays empty)."""

from __future__ import annotations

from pathlib import Path

import pytest
from redis import Redis as SyncRedis
from redis.asyncio import Redis

from supervisor.ha.lease import Granted, LeaseStore
from supervisor.ha.orders import SharedOrders
from supervisor.latch import LatchStore
from supervisor.stored_redis import repair_types
from testbed.redis_server import RedisServer
from tests.security.conftest import SUPERVISOR_PASSWORD, SUPERVISOR_USER, acl_denials

pytestmark = pytest.mark.anyio
NS = "supervisor"


async def test_setting_aside_and_recovering_need_no_command_outside_the_acl(
    acl_redis: RedisServer, admin: SyncRedis
) -> None:
    admin.hset(f"{NS}:engaged", "bogus", '{"level": "HALTED", "at": ' + "9" * 400 + "}")
    admin.hset(f"{NS}:reset", "breaker", "not a number")
    admin.set(f"{NS}:order:breaker", "[" * 1000 + "]" * 1000)
    admin.set(f"{NS}:seq", "not a number")
    admin.set(f"{NS}:leader:fencing", "9223372036854775807")
    admin.rpush(f"{NS}:state", "x")
    admin.acl_log_reset()
    redis = Redis.from_url(acl_redis.url, username=SUPERVISOR_USER, password=SUPERVISOR_PASSWORD)
    try:
        store = LatchStore(Path("/nonexistent"), redis, NS)
        assert await store.load_redis() == ({}, {})
        assert await store.next_seq() == 1
        assert await SharedOrders(redis, NS, 3.0).load(["breaker"]) == []
        reply = await LeaseStore(redis, NS, "a", 3.0).claim(None, 7)
        assert isinstance(reply, Granted) and reply.token == 8
        assert await repair_types(redis, NS, {f"{NS}:state": "hash"}) == [f"{NS}:state"]
    finally:
        await redis.aclose()
    assert acl_denials(admin) == []
    assert admin.hexists(f"{NS}:unreadable:engaged", "bogus")
    assert admin.exists(f"{NS}:unreadable:order:breaker", f"{NS}:unreadable:seq") == 2
    assert admin.get(f"{NS}:unreadable:leader:fencing") == b"9223372036854775807"
    assert admin.type(f"{NS}:unreadable:state") == b"list"

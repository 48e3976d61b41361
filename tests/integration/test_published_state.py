"""`status` reads back whatever is in Redis under the namespace, however it got there."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from supervisor.cli_tables import render_status
from supervisor.config.settings import Settings
from supervisor.publish.published import read_published
from testbed.redis_server import RedisServer

pytestmark = pytest.mark.anyio


def settings_for(redis_server: RedisServer) -> Settings:
    return Settings.model_validate(
        {
            "supervisor": {"namespace": "sup"},
            "redis": {"url": redis_server.url},
            "watchdogs": [{"name": "w", "kind": "redis_value", "key": "k", "breach": 1}],
        }
    )


@pytest.mark.parametrize("heartbeat", [b"soon", b"nan", b"\xff\xfe", b"1e999", b""])
async def test_status_survives_a_heartbeat_that_is_not_a_number(
    redis: Redis, redis_server: RedisServer, heartbeat: bytes
) -> None:
    # Before: float(b"soon") raised ValueError out of `status` (a traceback, exit 1).
    await redis.set("sup:heartbeat", heartbeat)
    await redis.hset("sup:state", mapping={"trading_state": "ACTIVE", "since": "never"})
    await redis.hset("sup:watchdog:w", mapping={"status": b"\xffOK", "last_run": "x"})
    published = await read_published(settings_for(redis_server))
    assert published["alive"] is True
    assert published["heartbeat_at"] is None
    shown = render_status(published)
    assert "trading state: ACTIVE since -" in shown
    assert "alive? (a heartbeat is there, but it is not a time)" in shown

"""Least privilege through Redis Sentinel: deploy/redis/sentinel.acl on every sentinel and
deploy/redis/supervisor.acl on every server (a replica becomes the master), as shipped. The
supervisor finds the master, trips the breaker, follows a failover and trips again with
nothing in any `ACL LOG`; with that login a sentinel refuses to fail over or to be
reconfigured."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis as SyncRedis
from redis.exceptions import NoPermissionError

from supervisor.actuators.base import ActionContext
from supervisor.actuators.redis_breaker import RedisBreaker, RedisBreakerConfig
from supervisor.config.sections import RedisSection
from supervisor.daemon.context import REDIS_TROUBLE
from supervisor.model import Decision, Status
from supervisor.sources.redis import connect
from testbed import REPO_ROOT
from testbed.sentinel import SERVICE, SentinelSetup, running_sentinels
from tests.security.conftest import (
    ACL_TEMPLATE,
    PASSWORD_PLACEHOLDER,
    SUPERVISOR_PASSWORD,
    SUPERVISOR_USER,
)

pytestmark = pytest.mark.anyio

SENTINEL_ACL = REPO_ROOT / "deploy" / "redis" / "sentinel.acl"
SENTINEL_PLACEHOLDER = "#SHA256_OF_THE_SENTINEL_PASSWORD"
SENTINEL_PASSWORD = "sentinel-acl-test-pw-4Rk9"


def rules(template: Path, placeholder: str, password: str) -> list[str]:
    """`ACL SETUSER` arguments of a shipped one-line ACL file, its placeholder filled in."""
    digest = hashlib.sha256(password.encode()).hexdigest()
    text = template.read_text(encoding="utf-8")
    assert placeholder in text
    words = text.replace(placeholder, f"#{digest}").split()
    assert words[0] == "user"
    return words[1:]


def clients(setup: SentinelSetup) -> list[SyncRedis]:
    """An administrator's client on every sentinel and every server."""
    return [s.client() for s in setup.sentinels] + [setup.client(s) for s in setup.servers]


@pytest.fixture
def locked_down(tmp_path: Path) -> Iterator[SentinelSetup]:
    with running_sentinels(tmp_path) as setup:
        for sentinel in setup.sentinels:
            with sentinel.client() as admin:
                admin.execute_command(
                    "ACL", "SETUSER", *rules(SENTINEL_ACL, SENTINEL_PLACEHOLDER, SENTINEL_PASSWORD)
                )
        for server in setup.servers:
            with setup.client(server) as admin:
                admin.execute_command(
                    "ACL",
                    "SETUSER",
                    *rules(ACL_TEMPLATE, PASSWORD_PLACEHOLDER, SUPERVISOR_PASSWORD),
                )
        yield setup


async def test_the_shipped_acls_are_enough_through_a_failover(locked_down: SentinelSetup) -> None:
    config = RedisSection.model_validate(
        {
            "url": locked_down.url,
            "username": SUPERVISOR_USER,
            "password": SUPERVISOR_PASSWORD,
            "sentinel_username": SUPERVISOR_USER,
            "sentinel_password": SENTINEL_PASSWORD,
            "timeout": "300ms",
        }
    )
    client = connect(config, "acl-test")
    breaker = RedisBreaker(
        "breaker", RedisBreakerConfig.model_validate({"kind": "redis_breaker"}), client
    )
    decision = Decision("w", Status.BREACH, ("breaker",), "stale", "inc", time.time())
    try:
        for admin in clients(locked_down):
            admin.acl_log_reset()
        assert (await breaker.engage(decision, ActionContext("t", time.time()))).changed
        new = await asyncio.to_thread(locked_down.failover)
        with locked_down.client(new) as admin:
            admin.delete("circuit_breaker:state")  # replicated from the first trip
            deadline = time.monotonic() + 5
            # Until the client has moved (within ASK_EVERY_S) a write may still reach the old
            # master, writable for ~10 s, or fail once on a connection the sentinels killed.
            while admin.get("circuit_breaker:state") is None:
                assert time.monotonic() < deadline, "never tripped on the new master"
                with contextlib.suppress(*REDIS_TROUBLE):
                    await breaker.engage(decision, ActionContext("t", time.time()))
                await asyncio.sleep(0.1)
        for admin in clients(locked_down):
            assert admin.acl_log() == []
            admin.close()
    finally:
        await client.aclose()


def test_the_sentinel_login_cannot_fail_over_or_reconfigure(locked_down: SentinelSetup) -> None:
    sentinel = locked_down.sentinels[0]
    with SyncRedis(
        host="127.0.0.1",
        port=sentinel.port,
        username=SUPERVISOR_USER,
        password=SENTINEL_PASSWORD,
        socket_timeout=1,
    ) as login:
        assert SERVICE in login.sentinel_masters()
        for command in (
            ("SENTINEL", "FAILOVER", SERVICE),
            ("SENTINEL", "SET", SERVICE, "quorum", "1"),
            ("SENTINEL", "REMOVE", SERVICE),
            ("ACL", "SETUSER", "x"),
        ):
            with pytest.raises(NoPermissionError):
                login.execute_command(*command)

"""Session-wide real servers; state is cleaned per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from redis import Redis as SyncRedis
from redis.asyncio import Redis

from supervisor.sources import http as http_source
from testbed.http_server import HttpServer
from testbed.notify_socket import NotifySocket
from testbed.postgres_server import PostgresServer, running_postgres
from testbed.redis_server import RedisServer, running_redis


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with running_redis(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_server.url)
    await client.flushall()
    yield client
    await client.aclose()


@pytest.fixture
def sync_redis(redis_server: RedisServer) -> Iterator[SyncRedis]:
    """A blocking client on the session Redis, emptied first: for daemon-level tests."""
    client = SyncRedis.from_url(redis_server.url)
    client.flushall()
    yield client
    client.close()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis of this test's own, for tests that stop and restart it."""
    with running_redis(tmp_path) as server:
        yield server


@pytest.fixture
def notify_socket() -> Iterator[NotifySocket]:
    sock = NotifySocket()
    yield sock
    sock.close()


@pytest.fixture
def anyio_backend() -> str:
    """APScheduler 3 and redis.asyncio need asyncio; anyio runs the async tests on it."""
    return "asyncio"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    with running_postgres() as server:
        yield server


@pytest.fixture
def private_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL of this test's own, for tests that stop and restart it."""
    with running_postgres() as server:
        yield server


@pytest.fixture
def http_server() -> Iterator[HttpServer]:
    """A real HTTP server on 127.0.0.1 with programmable answers (testbed/http_server.py)."""
    server = HttpServer()
    yield server
    server.close()


@pytest.fixture
async def http_client() -> AsyncIterator[httpx.AsyncClient]:
    """The supervisor's own HTTP client, as the daemon builds it."""
    client = http_source.client()
    yield client
    await client.aclose()

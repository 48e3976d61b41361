"""Session-wide real servers; state is cleaned per test. How the suite is spread over
pytest-xdist's workers (pyproject's addopts: `-n 2`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from redis import Redis as SyncRedis
from redis.asyncio import Redis
from xdist.scheduler import LoadScopeScheduling

from supervisor.sources import http as http_source
from testbed.http_server import HttpServer
from testbed.notify_socket import NotifySocket
from testbed.postgres_server import PostgresServer, running_postgres
from testbed.redis_server import RedisServer, running_redis

# Tests that must share a worker, because they share an expensive fixture (a session or module
# fixture is set up once per worker): tests/systemd/ builds one venv for /opt and boots one
# container at a time, tests/packaging/ builds and installs the wheel once.
ONE_WORKER = ("tests/systemd/", "tests/packaging/")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Modules with slow tests first, the longest allowed first (their timeout marks); each
    module's tests stay together and in order (its module fixtures are set up once). So the
    workers start on the minute-long tests and finish together on the many short ones. The
    order is the same on every worker, as pytest-xdist requires."""
    rank: dict[Path, tuple[bool, float]] = {}
    for item in items:
        timeouts = [float(mark.args[0]) for mark in item.iter_markers("timeout") if mark.args]
        mine = (item.get_closest_marker("slow") is None, -max(timeouts, default=0.0))
        rank[item.path] = min(rank.get(item.path, mine), mine)
    items.sort(key=lambda item: rank[item.path])  # stable: modules stay whole and in order


class Scheduling(LoadScopeScheduling):  # type: ignore[misc]  # pytest-xdist is untyped
    """pytest-xdist's scheduler for the suite: one test at a time to whichever worker is
    nearly done (a short queue each, unlike `--dist load`, which hands out a quarter of the
    suite up front), except that the tests under ONE_WORKER go to one worker together.
    (`--dist loadgroup` with xdist_group marks was meant for that, but silently stops
    grouping under pytest 9.2: pytest-xdist issue #1386.)"""

    def _split_scope(self, nodeid: str) -> str:
        return next((group for group in ONE_WORKER if nodeid.startswith(group)), nodeid)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> Scheduling | None:
    """Ours for the default `--dist load`; any other `--dist` given is xdist's own."""
    return Scheduling(config, log) if config.getvalue("dist") == "load" else None


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

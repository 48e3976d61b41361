"""One live daemon run serves every test here that needs a real scrape (it takes seconds)."""

from __future__ import annotations

import shutil

import pytest

from testbed.live_metrics import scrape_after_a_trip
from testbed.postgres_server import PostgresServer
from testbed.redis_server import RedisServer


@pytest.fixture(scope="session")
def live_metrics(
    tmp_path_factory: pytest.TempPathFactory,
    redis_server: RedisServer,
    postgres_server: PostgresServer,
) -> str:
    """/metrics of a real daemon subprocess whose breaker has tripped (testbed/live_metrics)."""
    directory = tmp_path_factory.mktemp("live-metrics")
    return scrape_after_a_trip(directory, redis_server.url, postgres_server.dsn)


@pytest.fixture(scope="session")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool is not installed: scripts/bootstrap installs it (apt prometheus)")
    return path

"""The shared clients every component reads through. Constructing them does no I/O.

A kind's `build` receives these (its declaration: WatchdogKind in supervisor/watchdogs/base.py,
ActuatorKind in supervisor/actuators/base.py); `open_clients` makes them from the [redis] and
[postgres] sections and `close_clients` closes them.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from redis.asyncio import Redis

from supervisor.config.sections import PostgresSection, RedisSection
from supervisor.sources import http
from supervisor.sources.postgres import Postgres
from supervisor.sources.redis import connect


@dataclass
class Clients:
    """The shared clients every component reads through. Constructing them does no I/O."""

    redis: Redis
    http: httpx.AsyncClient | None = None
    postgres: Postgres | None = None  # None when [postgres] dsn is not configured


def open_clients(redis: RedisSection, postgres: PostgresSection, client_name: str) -> Clients:
    """The shared clients for these sections; all connect lazily."""
    database = None
    if postgres.dsn is not None:
        database = Postgres(postgres.dsn, postgres.timeout_s, client_name)
    return Clients(connect(redis, client_name), http.client(), database)


async def close_clients(clients: Clients) -> None:
    await clients.redis.aclose()
    if clients.http is not None:
        await clients.http.aclose()
    if clients.postgres is not None:
        await clients.postgres.close()

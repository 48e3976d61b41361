"""The shared clients every component reads through. Constructing them does no I/O.

A kind's `build` receives these (supervisor/declarations.py); `open_clients` makes them from
the settings and `close_clients` closes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx
from redis.asyncio import Redis

from supervisor.sources import http
from supervisor.sources.postgres import Postgres
from supervisor.sources.redis import connect

if TYPE_CHECKING:  # settings import every kind, and every kind's build takes Clients
    from supervisor.config.settings import Settings


@dataclass
class Clients:
    """The shared clients every component reads through. Constructing them does no I/O."""

    redis: Redis
    http: httpx.AsyncClient | None = None
    postgres: Postgres | None = None  # None when [postgres] dsn is not configured


def open_clients(settings: Settings, client_name: str) -> Clients:
    """The shared clients for `settings`; all connect lazily."""
    postgres = None
    if settings.postgres.dsn is not None:
        postgres = Postgres(settings.postgres.dsn, settings.postgres.timeout_s, client_name)
    return Clients(connect(settings.redis, client_name), http.client(), postgres)


async def close_clients(clients: Clients) -> None:
    await clients.redis.aclose()
    if clients.http is not None:
        await clients.http.aclose()
    if clients.postgres is not None:
        await clients.postgres.close()

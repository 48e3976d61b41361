"""The shared clients every component reads through. Constructing them does no I/O.

A kind's `build` receives these (supervisor/declarations.py); supervisor/components.py
makes them from the settings (resources_for) and closes them (close_resources).
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from redis.asyncio import Redis

from supervisor.sources.postgres import Postgres


@dataclass
class Resources:
    """The shared clients every component reads through. Constructing them does no I/O."""

    redis: Redis
    http: httpx.AsyncClient | None = None
    postgres: Postgres | None = None  # None when [postgres] dsn is not configured

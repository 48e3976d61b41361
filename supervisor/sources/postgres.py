"""Scalar queries against PostgreSQL through a small asyncpg pool. Reads; decides nothing.

Every connection is opened read-only (`default_transaction_read_only`) with a
`statement_timeout`, so a watchdog query can neither write nor hold the database. The pool
opens connections lazily (min_size=0), so a database that is away at start costs nothing
but UNKNOWN verdicts, and broken connections are replaced by the pool after an outage.
"""

from __future__ import annotations

import asyncio
import logging

import asyncpg
from pydantic import SecretStr

from supervisor.errors import SourceError, first_line
from supervisor.quantities import format_duration

log = logging.getLogger(__name__)


class Postgres:
    def __init__(self, dsn: SecretStr, timeout_s: float, application_name: str) -> None:
        self._dsn = dsn
        self.timeout_s = timeout_s
        self.application_name = application_name
        self._pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()

    async def fetch_row(self, query: str, timeout_s: float) -> asyncpg.Record | None:
        """The first row of a read-only query; SourceError when the database cannot answer."""
        try:
            pool = await self._get_pool()
            async with pool.acquire(timeout=timeout_s) as connection:
                row: asyncpg.Record | None = await connection.fetchrow(query, timeout=timeout_s)
                return row
        except TimeoutError:
            raise SourceError(f"postgres: no answer within {format_duration(timeout_s)}") from None
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            raise SourceError(f"postgres: {first_line(exc)}") from None

    async def _get_pool(self) -> asyncpg.Pool:
        async with self._lock:
            if self._pool is None:
                self._pool = await asyncpg.create_pool(
                    self._dsn.get_secret_value(),
                    min_size=0,
                    max_size=4,
                    timeout=self.timeout_s,
                    max_inactive_connection_lifetime=60,
                    server_settings={
                        "application_name": self.application_name,
                        "default_transaction_read_only": "on",
                        "statement_timeout": str(int(self.timeout_s * 1000)),
                    },
                )
            return self._pool

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            try:
                await asyncio.wait_for(pool.close(), timeout=2)
            except TimeoutError:
                pool.terminate()

"""The shared Redis client when [redis] url is `redis+sentinel://`: redis-py's Sentinel and a
client of the service's master (`master_for`).

What redis-py does for us (redis/asyncio/sentinel.py): every new connection asks the sentinels
for the master's address (`SENTINEL MASTERS`, the first sentinel that answers with a master
not down), and idle connections to an old master are dropped when the address changes. A
connection to an old master fails one way or another: refused (dead), a timeout (frozen:
bounded by `timeout`), closed (the sentinels `CLIENT KILL` the clients of a demoted master),
or a READONLY reply to a write (demoted), which redis-py turns into a ConnectionError after
dropping the connection. The one immediate retry then reconnects to the new master; a check
that still fails is UNKNOWN, and the next one reads the new master.

What it does not: after `SENTINEL FAILOVER` the old master stays a writable master for about
10 s (the sentinels demote it only once it has reported itself a master for 8 s), and pooled
connections to it keep working: our writes would go where nobody reads them, and be thrown
away when it is demoted. So `FollowingPool` asks the sentinels again, in the background, at
most every `ASK_EVERY_S`, and a pooled connection to another address than theirs is
reconnected before it is handed out.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import MasterNotFoundError, Sentinel, SentinelConnectionPool
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from supervisor.config.sections import RedisSection
from supervisor.config.sentinel_url import SentinelUrl, parse_sentinel_url

ASK_EVERY_S = 0.5


class FollowingPool(SentinelConnectionPool):
    """redis-py's pool of connections to the master, that notices a new master within
    ASK_EVERY_S even while its connections to the old one still work."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[no-untyped-call]
        self._asked_at = float("-inf")
        self._asking: asyncio.Task[None] | None = None

    async def ensure_connection(self, connection: AbstractConnection) -> None:
        self._ask_if_due()
        address = self.master_address
        at = (getattr(connection, "host", None), getattr(connection, "port", None))
        if connection.is_connected and address not in (None, at):
            await connection.disconnect()  # to the old master: connect() asks the sentinels
        await super().ensure_connection(connection)

    async def get_master_address(self) -> tuple[str, int]:
        """redis-py's, with a readable error: its own appends the repr of every sentinel
        client that could not be asked, a few hundred characters each."""
        try:
            address: tuple[str, int] = await super().get_master_address()  # type: ignore[no-untyped-call]
        except MasterNotFoundError as exc:
            head, unreachable, _ = str(exc).partition(" : ")  # then "<client> - <error>, ..."
            asked = len(self.sentinel_manager.sentinels)
            why = "not every one answered" if unreachable else "none names a master up"
            raise MasterNotFoundError(f"{head} (asked {asked} sentinels: {why})") from None
        return address

    def _ask_if_due(self) -> None:
        """In the background: a command never waits for a sentinel that does not answer."""
        now = time.monotonic()
        if self.master_address is None or now - self._asked_at < ASK_EVERY_S:
            return  # no connection yet (the first one asks), or asked just now
        if self._asking is not None and not self._asking.done():
            return
        self._asked_at = now
        self._asking = asyncio.create_task(self._ask())

    async def _ask(self) -> None:
        # No sentinel answers: keep the master we know; a new connection asks again.
        with contextlib.suppress(RedisError, OSError):
            await self.get_master_address()  # drops the idle connections to an old master

    async def aclose(self) -> None:
        if self._asking is not None:
            self._asking.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._asking
        await super().aclose()


class SentinelRedis(Redis):
    """A `master_for` client that also closes the connections to the sentinels: redis-py
    leaves those to the Sentinel object, which nothing else holds."""

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await super().aclose(close_connection_pool)
        pool = self.connection_pool
        if isinstance(pool, SentinelConnectionPool):
            await pool.sentinel_manager.aclose()


def connect_sentinel(config: RedisSection, client_name: str) -> Redis:
    """The master's client; no I/O here. The sentinels and the master get the same timeouts,
    retry, client name and TLS settings as a plain client; each their own login."""
    url = parse_sentinel_url(config.url)
    common: dict[str, Any] = {
        "socket_timeout": config.timeout_s,
        "socket_connect_timeout": config.timeout_s,
        "retry": Retry(NoBackoff(), 1),
        "client_name": client_name,
    }
    if url.tls:
        common |= {"ssl": True, **url.tls_options}
    sentinel_password = config.sentinel_password
    sentinels = Sentinel(  # type: ignore[no-untyped-call]
        url.sentinels,
        sentinel_kwargs={
            **common,
            "username": config.sentinel_username,
            "password": sentinel_password.get_secret_value() if sentinel_password else None,
        },
    )
    username, password = _master_login(url, config)
    master: Redis = sentinels.master_for(
        url.service,
        redis_class=SentinelRedis,
        connection_pool_class=FollowingPool,
        db=url.db,
        username=username,
        password=password,
        **common,
    )
    return master


def _master_login(url: SentinelUrl, config: RedisSection) -> tuple[str | None, str | None]:
    """As with redis-py's own URLs: the URL's userinfo, else [redis] username and password."""
    password = config.password.get_secret_value() if config.password else None
    return url.username or config.username, url.password or password

"""The Redis client every component shares, and batched reads in one round trip.

`batch` runs a few commands through redis-py's pipeline. `Packed` and `send` are for reads of
thousands of keys that do not change between checks (tick_freshness): the commands are put in
the Redis protocol once, when the watchdog is built, and each check writes those bytes and
reads the replies, so a check pays no per-key packing in Python. With `hiredis` installed (a
dependency) redis-py parses the replies in C.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError, ResponseError

from supervisor.config.sections import RedisSection
from supervisor.config.sentinel_url import is_sentinel_url
from supervisor.errors import SourceError, first_line
from supervisor.sources.redis_sentinel import connect_sentinel

Command = tuple[str | bytes | int | float, ...]


def connect(config: RedisSection, client_name: str) -> Redis:
    """A lazily connecting client: no I/O here; it reconnects by itself after an outage.

    redis-py's default retry backs off for up to ~10 s per command, which would stall every
    watchdog while Redis is away; one immediate retry (a stale pooled connection after a
    Redis restart) and a short socket timeout let a check fail fast and become UNKNOWN.
    A `redis+sentinel://` URL gets the same, through the sentinels (redis_sentinel.py).
    """
    if is_sentinel_url(config.url):
        return connect_sentinel(config, redis_client_name(client_name))
    password = config.password.get_secret_value() if config.password else None
    return Redis.from_url(
        config.url,
        username=config.username,
        password=password,
        socket_timeout=config.timeout_s,
        socket_connect_timeout=config.timeout_s,
        retry=Retry(NoBackoff(), 1),
        client_name=redis_client_name(client_name),
    )


def redis_client_name(text: str) -> str:
    """CLIENT SETNAME refuses spaces and anything unprintable ("Jane Doe", "José"): every
    such character becomes "_", so an operator's name never stops a manual command."""
    return "".join(c if "!" <= c <= "~" else "_" for c in text)[:128]


async def batch(client: Redis, commands: list[Command]) -> list[object]:
    """Run `commands` in one pipeline (no MULTI); a per-command error comes back as its value.

    Raises SourceError when Redis itself cannot be reached.
    """
    try:
        async with client.pipeline(transaction=False) as pipe:
            for command in commands:
                pipe.execute_command(*command)
            return list(await pipe.execute(raise_on_error=False))
    except (RedisError, OSError) as exc:
        raise SourceError(f"redis: {first_line(exc)}") from exc


@dataclass(frozen=True)
class Packed:
    """Commands in the Redis protocol, ready to write: `chunks` hold `replies` commands."""

    chunks: tuple[bytes, ...]
    replies: int


def pack(batches: Iterable[Iterable[Command]]) -> Packed:
    """Each batch of commands as one chunk of the Redis protocol (RESP): the chunks are
    written together (pipelined), so a batch bounds the size of a write, not the round trips."""
    chunks, replies = [], 0
    for commands in batches:
        chunk = bytearray()
        for command in commands:
            replies += 1
            chunk += b"*%d\r\n" % len(command)
            for arg in command:
                data = _encode(arg)
                chunk += b"$%d\r\n%b\r\n" % (len(data), data)
        chunks.append(bytes(chunk))
    return Packed(tuple(chunks), replies)


def _encode(arg: str | bytes | int | float) -> bytes:
    """As redis-py encodes an argument: text as UTF-8, numbers as their repr."""
    if isinstance(arg, bytes):
        return arg
    if isinstance(arg, str):
        return arg.encode()
    return repr(arg).encode()


async def send(client: Redis, packed: Packed) -> list[object]:
    """Write `packed` on one pooled connection and read every reply, in order; an error reply
    (WRONGTYPE) comes back as its value. Like the client's own commands, a connection error
    is retried once at once (a pooled connection gone stale across a Redis restart).

    Raises SourceError when Redis itself cannot be reached. A check cut off in the middle
    leaves no reply behind: redis-py drops a connection whose read was interrupted.
    """
    pool = client.connection_pool
    try:
        connection = await pool.get_connection()  # type: ignore[no-untyped-call]
    except (RedisError, OSError) as exc:
        raise SourceError(f"redis: {first_line(exc)}") from exc
    assert isinstance(connection, AbstractConnection)
    try:
        return await connection.retry.call_with_retry(
            lambda: _exchange(connection, packed), lambda _error: connection.disconnect()
        )
    except (RedisError, OSError) as exc:
        raise SourceError(f"redis: {first_line(exc)}") from exc
    finally:
        await pool.release(connection)


async def _exchange(connection: AbstractConnection, packed: Packed) -> list[object]:
    await connection.send_packed_command(packed.chunks)
    replies: list[object] = []
    for _ in range(packed.replies):
        try:
            replies.append(await connection.read_response())
        except ResponseError as exc:
            replies.append(exc)
    return replies

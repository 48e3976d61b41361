"""The Redis client every component shares, and batched reads in one round trip."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from supervisor.config.sections import RedisSection
from supervisor.errors import SourceError, first_line

Command = tuple[str | bytes | int | float, ...]


def connect(config: RedisSection, client_name: str) -> Redis:
    """A lazily connecting client: no I/O here; it reconnects by itself after an outage.

    redis-py's default retry backs off for up to ~10 s per command, which would stall every
    watchdog while Redis is away; one immediate retry (a stale pooled connection after a
    Redis restart) and a short socket timeout let a check fail fast and become UNKNOWN.
    """
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

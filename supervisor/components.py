"""Build watchdogs, actuators, sessions and policy rules from validated settings. No I/O.

This is where a kind without an implementation in this version is refused, with the field
path, so `config validate` and `run` refuse the same files.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from redis.asyncio import Redis

from supervisor.actuators.base import Actuator
from supervisor.actuators.redis_breaker import RedisBreaker
from supervisor.config import Settings, WatchdogBase
from supervisor.errors import ConfigError
from supervisor.model import Status
from supervisor.policy import Rules
from supervisor.sessions import Session
from supervisor.sources import http
from supervisor.sources.postgres import Postgres
from supervisor.sources.redis import connect
from supervisor.watchdogs.base import Watchdog
from supervisor.watchdogs.tick_freshness import TickFreshness


@dataclass
class Resources:
    """The shared clients every component reads through. Constructing them does no I/O."""

    redis: Redis
    http: httpx.AsyncClient | None = None
    postgres: Postgres | None = None  # None when [postgres] dsn is not configured


WatchdogFactory = Callable[[Any, Resources], Watchdog]
ActuatorFactory = Callable[[str, Any, Resources], Actuator]

# kind -> how to build it. A kind missing here is refused with its field path.
WATCHDOG_FACTORIES: dict[str, WatchdogFactory] = {
    "tick_freshness": lambda config, r: TickFreshness(config, r.redis),
}
ACTUATOR_FACTORIES: dict[str, ActuatorFactory] = {
    "redis_breaker": lambda name, config, r: RedisBreaker(name, config, r.redis),
}
NEEDS_POSTGRES = ("poison_queue", "sql_value")


@dataclass
class Components:
    watchdogs: dict[str, Watchdog]
    actuators: dict[str, Actuator]
    sessions: dict[str, Session]
    rules: dict[str, Rules]


def unimplemented(settings: Settings) -> list[str]:
    """One "field.path: message" per configured kind this version cannot run."""
    problems = []
    for index, watchdog in enumerate(settings.watchdogs):
        if watchdog.kind not in WATCHDOG_FACTORIES:
            problems.append(
                f"watchdogs[{index}] ({watchdog.name}).kind: {watchdog.kind!r} is not implemented"
                f" in this version; implemented: {', '.join(WATCHDOG_FACTORIES)}"
            )
        elif watchdog.kind in NEEDS_POSTGRES and settings.postgres.dsn is None:
            problems.append(f"watchdogs[{index}] ({watchdog.name}): needs [postgres] dsn")
    for name, actuator in settings.actuators.items():
        if actuator.kind not in ACTUATOR_FACTORIES:
            problems.append(
                f"actuators.{name}.kind: {actuator.kind!r} is not implemented in this version;"
                f" implemented: {', '.join(ACTUATOR_FACTORIES)}"
            )
    return problems


def build(settings: Settings, resources: Resources) -> Components:
    problems = unimplemented(settings)
    if problems:
        raise ConfigError(problems)
    return Components(
        watchdogs={w.name: WATCHDOG_FACTORIES[w.kind](w, resources) for w in settings.watchdogs},
        actuators={
            name: ACTUATOR_FACTORIES[a.kind](name, a, resources)
            for name, a in settings.actuators.items()
        },
        sessions={name: s.build(name) for name, s in settings.sessions.items()},
        rules={w.name: rules_for(w) for w in settings.watchdogs},
    )


def resources_for(settings: Settings, client_name: str) -> Resources:
    """The shared clients for `settings`; all connect lazily."""
    postgres = None
    if settings.postgres.dsn is not None:
        postgres = Postgres(settings.postgres.dsn, settings.postgres.timeout_s, client_name)
    return Resources(connect(settings.redis, client_name), http.client(), postgres)


async def close_resources(resources: Resources) -> None:
    await resources.redis.aclose()
    if resources.http is not None:
        await resources.http.aclose()
    if resources.postgres is not None:
        await resources.postgres.close()


def rules_for(config: WatchdogBase) -> Rules:
    return Rules(
        trip_after=config.trip_after,
        clear_after=config.clear_after,
        fail_closed=config.fail_closed,
        unknown_grace_s=config.unknown_grace_s,
        actions={
            Status.WARN: tuple(config.on_warn),
            Status.BREACH: tuple(config.on_breach),
            Status.CRITICAL: tuple(config.on_critical),
        },
    )

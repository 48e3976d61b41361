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
from supervisor.actuators.command import CommandActuator
from supervisor.actuators.http import HttpActuator
from supervisor.actuators.redis_breaker import RedisBreaker
from supervisor.actuators.redis_flag import RedisFlag
from supervisor.config.settings import Settings
from supervisor.config.watchdog_base import WatchdogBase
from supervisor.errors import ConfigError
from supervisor.model import Status
from supervisor.policy import Rules
from supervisor.sessions import Session
from supervisor.sources import http
from supervisor.sources.postgres import Postgres
from supervisor.sources.redis import connect
from supervisor.watchdogs.base import Watchdog
from supervisor.watchdogs.cb_staleness import CbStaleness
from supervisor.watchdogs.http_health import HttpHealth
from supervisor.watchdogs.http_value import HttpValue
from supervisor.watchdogs.lock_ttl import LockTtl
from supervisor.watchdogs.margin import Margin
from supervisor.watchdogs.poison_queue import PoisonQueue
from supervisor.watchdogs.prometheus_query import PrometheusQuery
from supervisor.watchdogs.redis_value import RedisValue
from supervisor.watchdogs.sql_value import SqlValue, require_postgres
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
    "lock_ttl": lambda config, r: LockTtl(config, r.redis),
    "cb_staleness": lambda config, r: CbStaleness(config, r.redis),
    "redis_value": lambda config, r: RedisValue(config, r.redis),
    "margin": lambda config, r: Margin(config, r.http, r.redis),
    "http_health": lambda config, r: HttpHealth(config, r.http),
    "http_value": lambda config, r: HttpValue(config, r.http),
    "prometheus_query": lambda config, r: PrometheusQuery(config, r.http),
    "poison_queue": lambda config, r: PoisonQueue(config, require_postgres(r.postgres)),
    "sql_value": lambda config, r: SqlValue(config, require_postgres(r.postgres)),
}
ACTUATOR_FACTORIES: dict[str, ActuatorFactory] = {
    "redis_breaker": lambda name, config, r: RedisBreaker(name, config, r.redis),
    "redis_flag": lambda name, config, r: RedisFlag(name, config, r.redis),
    "http": lambda name, config, r: HttpActuator(name, config, r.http),
    "command": lambda name, config, r: CommandActuator(name, config),
}
NEEDS_POSTGRES = ("poison_queue", "sql_value")


@dataclass
class Components:
    watchdogs: dict[str, Watchdog]
    actuators: dict[str, Actuator]
    sessions: dict[str, Session]
    rules: dict[str, Rules]
    escalations: dict[str, tuple[str, ...]]  # actuator -> what to engage when it fails


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
        if actuator.kind not in ACTUATOR_FACTORIES and actuator.kind != "deadman":
            problems.append(
                f"actuators.{name}.kind: {actuator.kind!r} is not implemented in this version;"
                f" implemented: {', '.join(ACTUATOR_FACTORIES)}"
            )
    return problems


def build(settings: Settings, resources: Resources) -> Components:
    problems = unimplemented(settings)
    if problems:
        raise ConfigError(problems)
    watchdogs = {w.name: WATCHDOG_FACTORIES[w.kind](w, resources) for w in settings.watchdogs}
    for watchdog in watchdogs.values():
        watchdog.remediate = not settings.supervisor.dry_run
    return Components(
        watchdogs=watchdogs,
        actuators={
            name: ACTUATOR_FACTORIES[a.kind](name, a, resources)
            for name, a in settings.actuators.items()
            if a.kind != "deadman"  # not an action: see supervisor/actuators/deadman.py
        },
        sessions={name: s.build(name) for name, s in settings.sessions.items()},
        rules={w.name: rules_for(w) for w in settings.watchdogs},
        escalations={
            name: tuple(getattr(a, "on_failure", ())) for name, a in settings.actuators.items()
        },
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

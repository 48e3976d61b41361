"""Build watchdogs, actuators, sessions and policy rules from validated settings. No I/O.

This is where a kind without an implementation in this version is refused, with the field
path, so `config validate` and `run` refuse the same files.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from supervisor.actuators.base import Actuator
from supervisor.actuators.redis_breaker import RedisBreaker
from supervisor.config import RedisBreakerConfig, Settings, TickFreshnessConfig, WatchdogBase
from supervisor.errors import ConfigError
from supervisor.model import Status
from supervisor.policy import Rules
from supervisor.sessions import Session
from supervisor.watchdogs.base import Watchdog
from supervisor.watchdogs.tick_freshness import TickFreshness

WATCHDOG_KINDS = ("tick_freshness",)
ACTUATOR_KINDS = ("redis_breaker",)


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
        if watchdog.kind not in WATCHDOG_KINDS:
            problems.append(
                f"watchdogs[{index}] ({watchdog.name}).kind: {watchdog.kind!r} is not implemented"
                f" in this version; implemented: {', '.join(WATCHDOG_KINDS)}"
            )
    for name, actuator in settings.actuators.items():
        if actuator.kind not in ACTUATOR_KINDS:
            problems.append(
                f"actuators.{name}.kind: {actuator.kind!r} is not implemented in this version;"
                f" implemented: {', '.join(ACTUATOR_KINDS)}"
            )
    return problems


def build(settings: Settings, redis: Redis) -> Components:
    problems = unimplemented(settings)
    if problems:
        raise ConfigError(problems)
    watchdogs: dict[str, Watchdog] = {}
    for config in settings.watchdogs:
        assert isinstance(config, TickFreshnessConfig)
        watchdogs[config.name] = TickFreshness(config, redis)
    actuators: dict[str, Actuator] = {}
    for name, actuator_config in settings.actuators.items():
        assert isinstance(actuator_config, RedisBreakerConfig)
        actuators[name] = RedisBreaker(name, actuator_config, redis)
    return Components(
        watchdogs=watchdogs,
        actuators=actuators,
        sessions={name: s.build(name) for name, s in settings.sessions.items()},
        rules={w.name: rules_for(w) for w in settings.watchdogs},
    )


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

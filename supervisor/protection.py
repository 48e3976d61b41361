"""Build watchdogs, actuators, sessions and policy rules from validated settings. No I/O.

Each kind declares how it is built next to its implementation; supervisor/kinds.py lists
them. Here a kind whose needs the settings leave unmet (a poison_queue without [postgres]
dsn) is refused with its field path, so `config validate` and `run` refuse the same files.
"""

from __future__ import annotations

from dataclasses import dataclass

from supervisor.actuators.base import Actuator
from supervisor.config.settings import Settings
from supervisor.config.watchdog_base import WatchdogBase
from supervisor.declarations import Need
from supervisor.errors import ConfigError
from supervisor.kinds import DEADMAN_KIND, actuator_kind, watchdog_kind
from supervisor.model import Status
from supervisor.policy import Rules
from supervisor.sessions import Session
from supervisor.sources.clients import Clients
from supervisor.watchdogs.base import Watchdog


@dataclass
class Protection:
    watchdogs: dict[str, Watchdog]
    actuators: dict[str, Actuator]
    sessions: dict[str, Session]
    rules: dict[str, Rules]

    @property
    def escalations(self) -> dict[str, tuple[str, ...]]:
        """Actuator -> what to engage when it fails: each actuator's own `on_failure`."""
        return {name: actuator.on_failure for name, actuator in self.actuators.items()}


def unmet_needs(settings: Settings) -> list[str]:
    """One "field.path: message" per configured watchdog needing what the settings lack.

    PostgreSQL is the only need a config can leave unmet: [redis] has a default URL and the
    HTTP client needs no setting. No action kind needs PostgreSQL (tests/unit/test_kinds.py).
    """
    if settings.postgres.dsn is not None:
        return []
    return [
        f"watchdogs[{index}] ({watchdog.name}): needs [postgres] dsn"
        for index, watchdog in enumerate(settings.watchdogs)
        if Need.POSTGRES in watchdog_kind(watchdog.kind).needs
    ]


def build_protection(settings: Settings, clients: Clients) -> Protection:
    problems = unmet_needs(settings)
    if problems:
        raise ConfigError(problems)
    watchdogs = {w.name: watchdog_kind(w.kind).build(w, clients) for w in settings.watchdogs}
    return Protection(
        watchdogs=watchdogs,
        actuators={
            name: actuator_kind(a.kind).build(name, a, clients)
            for name, a in settings.actuators.items()
            if a.kind != DEADMAN_KIND.name  # not an action: see supervisor/actuators/deadman.py
        },
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

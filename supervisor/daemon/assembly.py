"""Everything the daemon builds from one config, as one object a reload replaces whole.

A reload builds a new Assembly from the new file (no I/O) and swaps it in with one
assignment, or refuses the file whole. What says where the supervisor's own state lives (its
Redis and Postgres, its namespace, state_dir and instance id) and how it is reached (metrics
listener, HA) changes only on restart: changed live, latches, resets and the audit trail would
be split between two places, and a `reset` run with the new file would write a marker the
running daemon never reads. The new Assembly therefore shares the old one's clients,
publisher, latch store, pending actions and audit trail, which are built from those sections
only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from supervisor.actuators.base import Actuator
from supervisor.actuators.deadman import Deadman, build_deadmen
from supervisor.config.settings import Settings
from supervisor.errors import ConfigError
from supervisor.ha.lease import LeaseStore
from supervisor.ha.orders import SharedOrders
from supervisor.latch import LatchStore
from supervisor.pending import PendingActions
from supervisor.protection import Protection, build_protection
from supervisor.publish.audit import AuditTrail
from supervisor.publish.redis_state import StatePublisher
from supervisor.sessions import Session
from supervisor.sources.clients import Clients, close_clients, open_clients
from supervisor.watchdogs.base import Watchdog

RESTART_ONLY_SECTIONS = ("redis", "postgres", "metrics", "ha", "recorder")
RESTART_ONLY_FIELDS = ("instance_id", "namespace", "state_dir")  # of [supervisor]


@dataclass(frozen=True)
class Assembly:
    settings: Settings
    clients: Clients
    protection: Protection  # watchdogs, actuators, sessions, rules, escalations
    deadmen: dict[str, Deadman]
    publisher: StatePublisher
    latches: LatchStore
    pending: PendingActions  # actions ordered and not done yet (a crash must not lose them)
    audit: AuditTrail
    lease: LeaseStore | None  # [ha] enabled: the leader lease
    orders: SharedOrders | None  # [ha] enabled: the leader's orders not known done

    @classmethod
    def build(cls, settings: Settings, outbox_gauge: Callable[[float], None]) -> Assembly:
        """No I/O: every client connects lazily."""
        own = settings.supervisor
        clients = open_clients(
            settings.redis, settings.postgres, f"trading-supervisor:{own.instance_id}"
        )
        audit = AuditTrail(
            own.state_dir,
            clients.redis,
            settings.postgres.dsn,
            own.namespace,
            own.instance_id,
            outbox_gauge,
        )
        return cls(
            settings=settings,
            clients=clients,
            protection=build_protection(settings, clients),
            deadmen=build_deadmen(settings.actuators, own.instance_id, clients),
            publisher=StatePublisher(clients.redis, own.namespace),
            latches=LatchStore(own.state_dir, clients.redis, own.namespace),
            pending=PendingActions(own.state_dir),
            audit=audit,
            lease=lease_store(settings, clients),
            orders=shared_orders(settings, clients),
        )

    def reloaded(self, settings: Settings) -> Assembly:
        """The assembly for `settings`, or ConfigError naming what only a restart changes."""
        refused = restart_only_changes(self.settings, settings)
        if refused:
            raise ConfigError(refused)
        return replace(
            self,
            settings=settings,
            protection=build_protection(settings, self.clients),
            deadmen=build_deadmen(
                settings.actuators, settings.supervisor.instance_id, self.clients
            ),
        )

    async def close(self) -> None:
        await self.audit.close()
        await close_clients(self.clients)

    @property
    def watchdogs(self) -> dict[str, Watchdog]:
        return self.protection.watchdogs

    @property
    def actuators(self) -> dict[str, Actuator]:
        return self.protection.actuators

    def session_of(self, watchdog: Watchdog) -> Session | None:
        name = watchdog.config.session
        return self.protection.sessions.get(name) if name else None

    @property
    def namespace(self) -> str:
        return self.settings.supervisor.namespace

    @property
    def instance_id(self) -> str:
        return self.settings.supervisor.instance_id

    @property
    def redis_timeout_s(self) -> float:
        return self.settings.redis.timeout_s


def lease_store(settings: Settings, clients: Clients) -> LeaseStore | None:
    if not settings.ha.enabled:
        return None
    own = settings.supervisor
    return LeaseStore(clients.redis, own.namespace, own.instance_id, settings.ha.lease_ttl_s)


def shared_orders(settings: Settings, clients: Clients) -> SharedOrders | None:
    if not settings.ha.enabled:
        return None
    return SharedOrders(clients.redis, settings.supervisor.namespace, settings.ha.lease_ttl_s)


def restart_only_changes(running: Settings, new: Settings) -> list[str]:
    """One line per setting that differs between `running` and `new` but cannot change live."""
    problems = [
        f"[{section}]: changes only on restart"
        for section in RESTART_ONLY_SECTIONS
        if getattr(running, section) != getattr(new, section)
    ]
    for field in RESTART_ONLY_FIELDS:
        before, after = getattr(running.supervisor, field), getattr(new.supervisor, field)
        if before != after:
            problems.append(
                f"[supervisor] {field}: changes only on restart (running {str(before)!r},"
                f" the file has {str(after)!r})"
            )
    return problems

"""What one kind declares, next to its implementation, as the module-level `KIND`:

- its config class, whose `kind: Literal["..."]` annotation is the kind's name (written once);
- how to build it from the shared clients (no I/O: the clients connect lazily);
- what it needs (Redis, the HTTP client, PostgreSQL);
- for a watchdog, its own value gauge, if it has one (docs/operations.md, "What it publishes").

supervisor/kinds.py lists every declaration; a kind is registered in no other way.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar, get_args, get_origin

from pydantic import BaseModel

from supervisor.actuators.base import Actuator
from supervisor.clients import Clients
from supervisor.config.actuator_base import ActuatorBase
from supervisor.config.types import Strict
from supervisor.config.watchdog_base import WatchdogBase
from supervisor.gauges import KindGauge
from supervisor.watchdogs.base import Watchdog

W = TypeVar("W", bound=WatchdogBase)
A = TypeVar("A", bound=ActuatorBase)


class Need(enum.Enum):
    """A shared client a kind reads or acts through (the fields of Clients)."""

    REDIS = "redis"
    HTTP = "http"
    POSTGRES = "postgres"  # the only one a config can lack: [postgres] dsn is optional


def kind_name(config: type[BaseModel]) -> str:
    """The one value of the config class's `kind: Literal["..."]` annotation."""
    annotation = config.model_fields["kind"].annotation
    values = get_args(annotation) if get_origin(annotation) is Literal else ()
    if len(values) != 1 or not isinstance(values[0], str):
        raise TypeError(f"{config.__name__}.kind must be annotated Literal['<kind name>']")
    return values[0]


class Named:
    """The kind's name is read from its config class; a declaration whose config class has no
    single `kind` Literal fails when its module is imported."""

    config: type[BaseModel]

    def __post_init__(self) -> None:
        kind_name(self.config)

    @property
    def name(self) -> str:
        return kind_name(self.config)


@dataclass(frozen=True, kw_only=True)
class WatchdogKind(Named, Generic[W]):
    config: type[W]
    build: Callable[[W, Clients], Watchdog]
    needs: frozenset[Need]
    gauge: KindGauge | None = None


@dataclass(frozen=True, kw_only=True)
class ActuatorKind(Named, Generic[A]):
    """An action: engaged by decisions, built once per `[actuators.NAME]`."""

    config: type[A]
    build: Callable[[str, A, Clients], Actuator]  # (name, config, clients)
    needs: frozenset[Need]


@dataclass(frozen=True, kw_only=True)
class DeadmanKind(Named):
    """Configured under [actuators] but not an action (never engaged by a decision, no level),
    so it has no `build` here: build_deadmen() in supervisor/actuators/deadman.py makes them,
    and protection.build leaves them out of the actuators."""

    config: type[Strict]
    needs: frozenset[Need]

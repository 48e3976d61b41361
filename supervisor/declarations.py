"""What one kind declares, next to its implementation, as the module-level `KIND`:

- its config class, whose `kind: Literal["..."]` annotation is the kind's name (written once);
- how to build it from the shared clients (no I/O: the clients connect lazily);
- what it needs (Redis, the HTTP client, PostgreSQL);
- for a watchdog, its own value gauge, if it has one (docs/operations.md, "What it publishes").

Each family declares its kinds beside its own base: WatchdogKind in
supervisor/watchdogs/base.py, ActuatorKind and DeadmanKind in supervisor/actuators/base.py.
What they share is here, and imports neither family. supervisor/kinds.py lists every
declaration; a kind is registered in no other way.
"""

from __future__ import annotations

import enum
from typing import Literal, get_args, get_origin

from pydantic import BaseModel


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

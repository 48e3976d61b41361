"""The supervisor's own problems: what is wrong with its dependencies and its own parts.

Each problem has a source (and, for a source with many members, the one it is about: a
watchdog, an actuator, a deadman) and a one-line detail. While any is noted health is
DEGRADED, and each shows in STATUS, `{ns}:state` and `status` as "label: detail", in the
order first noted.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass

from supervisor.errors import first_line

log = logging.getLogger("supervisor")


class Source(enum.Enum):
    """What a problem is about; the value is its label (the name the operator reads)."""

    REDIS = "redis"  # the supervisor's own Redis (its state, latches, lease)
    METRICS = "metrics"  # the metrics listener
    STATE_DIR = "state_dir"  # latches, pending orders, the audit outbox on disk
    CLOCK = "clock"  # Redis TIME far from this daemon's clock
    INSTANCE_ID = "instance_id"  # another process runs with this instance id
    WATCHDOG = "watchdog"  # one watchdog's checks cut off run after run
    ACTION = "action"  # one actuator's action failing
    ACTUATOR = "actuator"  # one actuator's store cannot be read
    RELEASE = "release"  # one actuator released at the venue or waiting for it
    DEADMAN = "deadman"  # one deadman's heartbeat failing


@dataclass(frozen=True)
class Key:
    source: Source
    subject: str = ""  # the watchdog, actuator or deadman; "" for a dependency

    @property
    def label(self) -> str:
        return f"{self.source.value} {self.subject}" if self.subject else self.source.value


class Problems:
    def __init__(self) -> None:
        self._noted: dict[Key, str] = {}  # in the order first noted

    def note(self, source: Source, detail: str, subject: str = "") -> bool:
        """Note (or update) a problem; True when it is new."""
        key = Key(source, subject)
        new = key not in self._noted
        self._noted[key] = detail
        return new

    def clear(self, source: Source, subject: str = "") -> bool:
        """Forget a problem; True when it was noted."""
        return self._noted.pop(Key(source, subject), None) is not None

    def has(self, source: Source, subject: str = "") -> bool:
        return Key(source, subject) in self._noted

    def detail(self, source: Source, subject: str = "") -> str | None:
        return self._noted.get(Key(source, subject))

    def failed(self, source: Source, exc: BaseException, subject: str = "") -> None:
        """A dependency failed: said once, then kept up to date while it goes on."""
        detail = "timed out" if isinstance(exc, TimeoutError) else first_line(exc)
        if self.note(source, detail, subject):
            label = Key(source, subject).label
            log.error("%s: %s (watchdogs that need it go UNKNOWN; retrying)", label, detail)

    def summary(self) -> list[str]:
        """Every problem as "label: detail", in the order first noted."""
        return [f"{key.label}: {detail}" for key, detail in self._noted.items()]

    def __bool__(self) -> bool:
        return bool(self._noted)

"""Plain data types shared by every layer. Imports nothing of ours."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Status(enum.IntEnum):
    """A verdict. The numbers are the `supervisor_watchdog_status` gauge values."""

    OK = 0
    WARN = 1
    BREACH = 2
    CRITICAL = 3
    UNKNOWN = 4

    @property
    def is_failing(self) -> bool:
        return self in (Status.BREACH, Status.CRITICAL)


class TradingState(enum.IntEnum):
    """The most restrictive level any engaged actuator enforces (`supervisor_trading_state`)."""

    ACTIVE = 0
    REDUCE_ONLY = 1
    HALTED = 2
    FLATTEN = 3

    @classmethod
    def from_level(cls, level: str) -> TradingState:
        return cls[level.upper()]


class Health(enum.IntEnum):
    """The supervisor's own health (`supervisor_health_state`)."""

    OK = 0
    DEGRADED = 1
    HALTED = 2


@dataclass(frozen=True, slots=True)
class Verdict:
    """One watchdog's judgement of one subject (an instrument, a key, a query...)."""

    watchdog: str
    subject: str
    status: Status
    reason: str
    value: float | None = None
    unit: str = ""
    threshold: float | None = None
    # Wall-clock time at which this subject's status gets worse if nothing new arrives
    # (an age crossing its next threshold); the daemon may re-run the watchdog then.
    deadline: float | None = None


class Origin(enum.StrEnum):
    """Who ordered an engagement: a watchdog's incident, an operator, or the latch (an
    engaged actuator found released without a reset is engaged again)."""

    WATCHDOG = "watchdog"
    MANUAL = "manual"
    LATCH = "latch"


@dataclass(frozen=True, slots=True)
class Decision:
    """An order to engage actuators: a watchdog's incident, a manual command or the latch."""

    watchdog: str  # the watchdog whose incident this is; "" unless origin is WATCHDOG
    severity: Status
    actuators: tuple[str, ...]
    reason: str
    incident_id: str
    at: float
    escalated_from: tuple[str, ...] = ()  # actuators that failed on the way here
    origin: Origin = Origin.WATCHDOG

    @property
    def source(self) -> str:
        """Who ordered it, for reasons and log lines: the watchdog, or "manual"/"latch"."""
        return self.watchdog if self.origin is Origin.WATCHDOG else self.origin.value


@dataclass(frozen=True, slots=True)
class Remedy:
    """A repair a watchdog proposes (lock_ttl: release an orphaned lock). The daemon applies
    it, never `check` or dry_run (supervisor/remedies.py)."""

    watchdog: str
    action: str  # "release_orphan"
    subject: str  # the key
    token: bytes  # what must still be there for the repair to apply (the owner value seen)


@dataclass(slots=True)
class WatchdogRun:
    """The outcome of one evaluation of a watchdog, as published."""

    watchdog: str
    status: Status
    verdicts: list[Verdict]
    started_at: float
    duration_s: float
    streak: int = 0
    next_run: float | None = None
    reason: str = field(default="")


def worst(statuses: list[Status]) -> Status:
    """The most severe status; UNKNOWN ranks below BREACH (it is judged by the policy)."""
    order = [Status.OK, Status.WARN, Status.UNKNOWN, Status.BREACH, Status.CRITICAL]
    return max(statuses, key=order.index, default=Status.OK)

"""Plain data types shared by every layer. Imports nothing of ours."""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import overload


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
    # The HA lease's fencing token of the term in which it was first ordered (None with [ha]
    # off): carried in the action (Idempotency-Key, X-Fencing-Token, breaker history entry).
    fencing_token: int | None = None

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
    verdicts: Verdicts
    started_at: float
    duration_s: float
    streak: int = 0
    next_run: float | None = None
    reason: str = field(default="")


# Severity as the policy ranks it: UNKNOWN below BREACH (the policy judges UNKNOWN itself).
RANK = {s: rank for rank, s in enumerate((Status.OK, Status.WARN, Status.UNKNOWN, Status.BREACH))}
RANK[Status.CRITICAL] = len(RANK)


def worst(statuses: Iterable[Status]) -> Status:
    """The most severe status; UNKNOWN ranks below BREACH (it is judged by the policy)."""
    return max(statuses, key=RANK.__getitem__, default=Status.OK)


class Verdicts(Sequence[Verdict]):
    """One evaluation's verdicts in subject order, with what every run is asked (counts by
    status, the earliest deadline, the largest value) worked out once.

    Only the verdicts whose status differs from `usual` exist as objects (`unusual`, by
    index, in index order); `build(i)` makes any other one when it is asked for. So a
    watchdog with 100,000 subjects, nearly all OK, pays a comparison per OK subject, not an
    object and a formatted reason: those are built only for whoever reads every verdict
    (`check`, per-subject metrics with `subject_metrics = "all"`).
    """

    __slots__ = ("_build", "_size", "counts", "earliest_deadline", "max_value", "unusual", "usual")

    def __init__(
        self,
        size: int,
        usual: Status,
        build: Callable[[int], Verdict],
        unusual: dict[int, Verdict],
        *,
        earliest_deadline: float | None = None,
        max_value: float | None = None,
    ) -> None:
        self._size = size
        self._build = build
        self.usual = usual
        self.unusual = unusual
        self.counts = dict.fromkeys(Status, 0)
        for verdict in unusual.values():
            self.counts[verdict.status] += 1
        self.counts[usual] += size - len(unusual)
        self.earliest_deadline = earliest_deadline
        self.max_value = max_value

    @classmethod
    def of(cls, verdicts: Sequence[Verdict]) -> Verdicts:
        """Every verdict given (a watchdog with a few subjects); a Verdicts stays as it is."""
        if isinstance(verdicts, Verdicts):
            return verdicts
        items = list(verdicts)
        unusual = {i: v for i, v in enumerate(items) if v.status is not Status.OK}
        deadlines = [v.deadline for v in items if v.deadline is not None]
        values = [v.value for v in items if v.value is not None and not math.isnan(v.value)]
        return cls(
            len(items),
            Status.OK,
            items.__getitem__,
            unusual,
            earliest_deadline=min(deadlines, default=None),
            max_value=max(values, default=None),
        )

    @classmethod
    def uniform(
        cls, watchdog: str, subjects: Sequence[str], status: Status, reason: str
    ) -> Verdicts:
        """The same status and reason for every subject (a timeout, the session closed)."""
        return cls(
            len(subjects), status, lambda i: Verdict(watchdog, subjects[i], status, reason), {}
        )

    @property
    def worst(self) -> Status:
        return worst(status for status, count in self.counts.items() if count)

    def with_status(self, status: Status, limit: int | None = None) -> Iterator[Verdict]:
        """The verdicts with `status`, in subject order, at most `limit` of them."""
        left = self.counts[status] if limit is None else min(limit, self.counts[status])
        if left <= 0:
            return
        if status is self.usual:
            chosen: Iterable[Verdict] = (
                self._build(i) for i in range(self._size) if i not in self.unusual
            )
        else:
            chosen = (v for v in self.unusual.values() if v.status is status)
        for verdict in chosen:
            yield verdict
            left -= 1
            if left == 0:
                return

    def __len__(self) -> int:
        return self._size

    @overload
    def __getitem__(self, index: int) -> Verdict: ...
    @overload
    def __getitem__(self, index: slice) -> list[Verdict]: ...
    def __getitem__(self, index: int | slice) -> Verdict | list[Verdict]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._size))]
        if index < 0:
            index += self._size
        if not 0 <= index < self._size:
            raise IndexError("verdict index out of range")
        found = self.unusual.get(index)
        return found if found is not None else self._build(index)

    def __iter__(self) -> Iterator[Verdict]:
        unusual, build = self.unusual, self._build
        for i in range(self._size):
            found = unusual.get(i)
            yield found if found is not None else build(i)

    def __repr__(self) -> str:
        counts = ", ".join(f"{s.name}={n}" for s, n in self.counts.items() if n)
        return f"Verdicts({self._size}: {counts})"

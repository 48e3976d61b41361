"""What a nemesis run recorded: plain data, saved as JSON, read by the checker.

Times are seconds on the runner's monotonic clock since the stack was up (the same clock the
schedule uses), never a daemon's wall clock: a clock fault cannot move them.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from testbed.nemesis.schedule import Timing


@dataclass(frozen=True)
class Window:
    """A stale window as it happened: the last tick written before the pause (`start_s`),
    the first one after (`end_s`), when the operator's reset was done (`reset_s`), and when
    it began (`reset_begun_s`: the first reset may land in Redis from then on; a loaded
    machine takes seconds for both). None in a history saved before it was recorded."""

    index: int
    start_s: float
    end_s: float
    reset_s: float
    instruments: tuple[str, ...] = ()
    reset_begun_s: float | None = None

    @property
    def reset_from_s(self) -> float:
        """From when Redis may hold (and lose) one of this window's resets."""
        return self.reset_s if self.reset_begun_s is None else self.reset_begun_s

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


@dataclass(frozen=True)
class Injected:
    """A fault as injected: on which instance (None for Redis/PostgreSQL), whether it held
    the lease then, when it began and ended."""

    index: int
    kind: str
    start_s: float
    end_s: float
    instance: str | None = None
    was_leader: bool = False
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class VenueRequest:
    """One activation request at the kill endpoint."""

    at_s: float
    key: str  # Idempotency-Key: "{incident_id}:{actuator}:{token}"
    fencing_token: str | None  # the X-Fencing-Token header, as sent
    body: str
    status: int

    @property
    def actuator(self) -> str:
        parts = self.key.split(":")  # the token is left out while no lease is held
        return parts[1] if len(parts) >= 2 else ""


@dataclass(frozen=True)
class BreakerTrip:
    """A breaker history entry, when the recorder first saw it."""

    seen_s: float
    incident_id: str
    by: str
    fencing_token: str | None


@dataclass(frozen=True)
class Reset:
    """The operator's `trading-supervisor reset GROUP` after a window: retried while it fails
    (Redis may be away for a moment), `ok` when it finally succeeded."""

    window: int
    group: str
    ok: bool
    attempts: int
    error: str = ""


@dataclass(frozen=True)
class TokenSeen:
    """`{ns}:leader:fencing` when the recorder saw it change: a new lease was granted."""

    seen_s: float
    token: int


@dataclass(frozen=True)
class AuditRow:
    id: str
    kind: str
    actuator: str | None = None
    incident_id: str | None = None
    instance: str | None = None
    outcome: str | None = None


@dataclass(frozen=True)
class Exit:
    """A daemon process that ended: seen by the recorder (`at_s`), or stopped by the runner
    at the end of the run (`final`: SIGTERM, a clean stop must exit 0)."""

    instance: str
    at_s: float
    code: int
    final: bool = False


@dataclass
class History:
    seed: int
    timing: Timing
    instances: tuple[str, ...]
    windows: list[Window] = field(default_factory=list)
    faults: list[Injected] = field(default_factory=list)
    venue: list[VenueRequest] = field(default_factory=list)
    breaker: list[BreakerTrip] = field(default_factory=list)
    tokens: list[TokenSeen] = field(default_factory=list)
    resets: list[Reset] = field(default_factory=list)
    stream_ids: list[str] = field(default_factory=list)  # ids seen in {ns}:events
    postgres: list[AuditRow] = field(default_factory=list)
    outbox: list[AuditRow] = field(default_factory=list)  # every instance's outbox at the end
    exits: list[Exit] = field(default_factory=list)
    bug_lines: list[str] = field(default_factory=list)  # "instance: line" from the daemons' logs

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=1), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> History:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return cls(
            seed=raw["seed"],
            timing=Timing(**raw["timing"]),
            instances=tuple(raw["instances"]),
            windows=[
                Window(**{**w, "instruments": tuple(w["instruments"])}) for w in raw["windows"]
            ],
            faults=[Injected(**f) for f in raw["faults"]],
            venue=[VenueRequest(**v) for v in raw["venue"]],
            breaker=[BreakerTrip(**b) for b in raw["breaker"]],
            tokens=[TokenSeen(**t) for t in raw.get("tokens", [])],
            resets=[Reset(**r) for r in raw.get("resets", [])],
            stream_ids=list(raw["stream_ids"]),
            postgres=[AuditRow(**r) for r in raw["postgres"]],
            outbox=[AuditRow(**r) for r in raw["outbox"]],
            exits=[Exit(**e) for e in raw["exits"]],
            bug_lines=list(raw["bug_lines"]),
        )

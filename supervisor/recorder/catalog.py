"""What a recording says about each watchdog that produced it: kind, rules, thresholds, how
its values are kept, and a fingerprint of what it reads. Written in every segment's header,
so a replay knows what made the recording and what a candidate config may change."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any

from supervisor.config.loading import redacted
from supervisor.config.settings import Settings
from supervisor.config.watchdog_base import WatchdogBase
from supervisor.model import Status
from supervisor.policy import Rules

# Above this many subjects a watchdog's runs keep what a replay needs (every subject that
# is not OK, and the run's worst values), not every subject's value: 100,000 instruments at
# 1 s would otherwise write 150 kB/s, and every value costs the writer's thread ~0.7 us of
# the daemon's one GIL: 10,000 at 1 s took 7 % of a core (the budget is 1 %; the daemon's
# 5 %). The same line as the per-subject metrics (publish/subject_metrics.py).
ALL_SUBJECTS_UP_TO = 1_000

POLICY_FIELDS = frozenset(
    {
        "name",
        "interval",
        "timeout",
        "session",
        "trip_after",
        "clear_after",
        "fail_closed",
        "unknown_grace",
        "on_warn",
        "on_breach",
        "on_critical",
        "subject_metrics",
    }
)
THRESHOLD_FIELDS = ("warn", "breach", "critical", "direction")


@dataclass(frozen=True)
class Thresholds:
    warn: float | None
    breach: float | None
    critical: float | None
    direction: str = "above"


@dataclass(frozen=True)
class WatchdogEntry:
    kind: str
    fingerprint: str  # what it reads and how (everything but policy and thresholds)
    thresholds: Thresholds | None  # None: a kind judged otherwise than by one number
    trip_after: int
    clear_after: int
    fail_closed: bool
    unknown_grace_s: float
    on_warn: tuple[str, ...]
    on_breach: tuple[str, ...]
    on_critical: tuple[str, ...]
    interval_s: float
    session: str | None
    instant: bool  # an age: the instant it counts from is kept (a tick's time), in ms
    scale: int  # values are kept as round(value * scale)

    def rules(self) -> Rules:
        return Rules(
            trip_after=self.trip_after,
            clear_after=self.clear_after,
            fail_closed=self.fail_closed,
            unknown_grace_s=self.unknown_grace_s,
            actions={
                Status.WARN: self.on_warn,
                Status.BREACH: self.on_breach,
                Status.CRITICAL: self.on_critical,
            },
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WatchdogEntry:
        """From a segment header (outside input): a wrong shape raises ValueError."""
        try:
            fields = dict(data)
            raw = fields.pop("thresholds")
            thresholds = None if raw is None else Thresholds(**raw)
            for name in ("on_warn", "on_breach", "on_critical"):
                fields[name] = tuple(str(a) for a in fields[name])
            entry = cls(thresholds=thresholds, **fields)
        except (TypeError, KeyError) as exc:
            raise ValueError(f"bad watchdog entry: {exc}") from exc
        if not isinstance(entry.scale, int) or entry.scale <= 0:
            raise ValueError("bad watchdog entry: scale")
        return entry


def config_hash(settings: Settings) -> str:
    """The effective config's hash (secrets masked): which config made a segment."""
    text = json.dumps(redacted(settings), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def entry_for(config: WatchdogBase) -> WatchdogEntry:
    dumped = config.model_dump(mode="json", by_alias=True)
    thresholds = _thresholds(dumped)
    reads = {k: v for k, v in dumped.items() if k not in POLICY_FIELDS and k not in _JUDGING}
    fingerprint = hashlib.sha256(json.dumps(reads, sort_keys=True).encode()).hexdigest()[:16]
    instant = "breach_s" in type(config).model_fields  # ages: a tick's time, a heartbeat's
    return WatchdogEntry(
        kind=config.kind,
        fingerprint=fingerprint,
        thresholds=thresholds,
        trip_after=config.trip_after,
        clear_after=config.clear_after,
        fail_closed=config.fail_closed,
        unknown_grace_s=config.unknown_grace_s,
        on_warn=tuple(config.on_warn),
        on_breach=tuple(config.on_breach),
        on_critical=tuple(config.on_critical),
        interval_s=config.interval_s,
        session=config.session,
        instant=instant,
        scale=1000 if instant else 1_000_000,
    )


_JUDGING = frozenset(THRESHOLD_FIELDS)


def _thresholds(dumped: dict[str, Any]) -> Thresholds | None:
    """warn/breach/critical (value or age thresholds, by their aliases) when the kind has
    them and nothing else judges; None for kinds with their own rules (lock_ttl...)."""
    if not any(name in dumped for name in ("warn", "breach", "critical")):
        return None
    return Thresholds(
        dumped.get("warn"),
        dumped.get("breach"),
        dumped.get("critical"),
        dumped.get("direction", "above"),
    )


def catalog(settings: Settings) -> dict[str, WatchdogEntry]:
    return {w.name: entry_for(w) for w in settings.watchdogs}

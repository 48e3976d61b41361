"""What every `[[watchdogs]]` entry has (name, schedule, hysteresis, actions), and the two
threshold shapes kinds share: ages (in seconds) and values (in either direction).

Each kind's own config class extends these next to its implementation
(supervisor/watchdogs/<kind>.py).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from supervisor.config.types import Duration, Interval, Name, PositiveDuration, Strict, Timeout

# More consecutive observations than this before acting (or before ending an incident) is a
# watchdog that in practice never acts: lengthen `interval` instead.
MAX_CONSECUTIVE = 100
LEVELS = ("warn", "breach", "critical")


@dataclass(frozen=True)
class AlertLevels:
    """The levels a subject is judged against, for `check`'s perfdata (warn;crit): `warn`
    gives WARN, `breach` the level that trips; `direction` "below" when lower is worse."""

    warn: float | None = None
    breach: float | None = None
    direction: str = "above"


class WatchdogBase(Strict):
    name: Name
    kind: str
    interval_s: Interval = Field(1.0, alias="interval")
    timeout_s: Timeout | None = Field(None, alias="timeout")
    session: str | None = None
    trip_after: int = Field(1, ge=1, le=MAX_CONSECUTIVE)
    clear_after: int = Field(3, ge=1, le=MAX_CONSECUTIVE)
    fail_closed: bool = False
    unknown_grace_s: Duration = Field(10.0, alias="unknown_grace")
    on_warn: list[str] = []
    on_breach: list[str] = []
    on_critical: list[str] = []
    # Per-subject series (supervisor_watchdog_value, the kind's gauge): "auto" is "all" up to
    # SUBJECT_SERIES_ALL_UP_TO subjects and "not_ok" above (supervisor/publish/metrics.py).
    subject_metrics: Literal["auto", "all", "not_ok", "none"] = "auto"

    @property
    def check_timeout_s(self) -> float:
        """Each check is cut off after this; by default its interval, at most 2 s."""
        return self.timeout_s if self.timeout_s is not None else min(self.interval_s, 2.0)

    def alert_levels(self, subject: str) -> AlertLevels:
        """The levels `subject` is judged against. A kind with the threshold shapes below has
        theirs; a kind with other limits overrides this."""
        return shape_levels(self)

    def actuator_refs(self) -> dict[str, list[str]]:
        return {
            "on_warn": self.on_warn,
            "on_breach": self.on_breach,
            "on_critical": self.on_critical,
        }


class AgeThresholds(Strict):
    # An age is never below 0, so a 0 threshold would be crossed by every reading.
    warn_s: PositiveDuration | None = Field(None, alias="warn")
    breach_s: PositiveDuration = Field(alias="breach")
    critical_s: PositiveDuration | None = Field(None, alias="critical")

    @model_validator(mode="after")
    def _ordered(self) -> AgeThresholds:
        check_order(self.warn_s, self.breach_s, self.critical_s, "above")
        return self


class ValueThresholds(Strict):
    # The JSON Schema says what _ordered() says first: at least one level is set.
    model_config = ConfigDict(
        json_schema_extra={"anyOf": [{"required": [level]} for level in LEVELS]}
    )

    warn: float | None = None
    breach: float | None = None
    critical: float | None = None
    direction: Literal["above", "below"] = "above"

    @model_validator(mode="after")
    def _ordered(self) -> ValueThresholds:
        if self.warn is None and self.breach is None and self.critical is None:
            raise ValueError("set at least one of 'warn', 'breach', 'critical'")
        check_order(self.warn, self.breach, self.critical, self.direction)
        return self


def shape_levels(config: object) -> AlertLevels:
    if isinstance(config, AgeThresholds):
        return AlertLevels(config.warn_s, config.breach_s)
    if isinstance(config, ValueThresholds):
        return AlertLevels(config.warn, config.breach, config.direction)
    return AlertLevels()


def check_order(warn: float | None, breach: float | None, crit: float | None, way: str) -> None:
    """Thresholds that are set must get strictly worse in the direction `way`."""
    levels = [
        (n, v) for n, v in (("warn", warn), ("breach", breach), ("critical", crit)) if v is not None
    ]
    for (low_name, low), (high_name, high) in itertools.pairwise(levels):
        if (way == "above" and low >= high) or (way == "below" and low <= high):
            word = "below" if way == "above" else "above"
            raise ValueError(f"'{low_name}' ({low:g}) must be {word} '{high_name}' ({high:g})")

"""Judging a number against warn / breach / critical thresholds. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from supervisor.model import Status, Verdict
from supervisor.quantities import format_value


@dataclass(frozen=True)
class Judgement:
    status: Status
    threshold: float | None  # the threshold crossed (None when OK)
    next_threshold: float | None  # the next one up, for deadline scheduling


def judge_above(
    value: float, warn: float | None, breach: float | None, critical: float | None
) -> Judgement:
    """Worse as `value` grows: `value > threshold` crosses it (equal is still fine)."""
    levels = [(Status.WARN, warn), (Status.BREACH, breach), (Status.CRITICAL, critical)]
    status, crossed, upcoming = Status.OK, None, None
    for level, threshold in levels:
        if threshold is None:
            continue
        if value > threshold:
            status, crossed = level, threshold
        elif upcoming is None:
            upcoming = threshold
    return Judgement(status, crossed, upcoming)


def judge_value(
    value: float,
    warn: float | None,
    breach: float | None,
    critical: float | None,
    direction: str = "above",
) -> Judgement:
    """`above`: worse as the value grows (`value > t`); `below`: worse as it falls (`value < t`)."""
    if direction == "above":
        return judge_above(value, warn, breach, critical)
    flipped = judge_above(-value, *(None if t is None else -t for t in (warn, breach, critical)))
    return Judgement(
        flipped.status,
        None if flipped.threshold is None else -flipped.threshold,
        None if flipped.next_threshold is None else -flipped.next_threshold,
    )


def comparison(direction: str) -> str:
    return ">" if direction == "above" else "<"


class ValueRules(Protocol):
    """The threshold fields every value watchdog's config has (read-only)."""

    @property
    def warn(self) -> float | None: ...
    @property
    def breach(self) -> float | None: ...
    @property
    def critical(self) -> float | None: ...
    @property
    def direction(self) -> str: ...


def value_verdict(
    watchdog: str, subject: str, value: float, rules: ValueRules, unit: str = ""
) -> Verdict:
    """The verdict on a number: "<subject> 0.42 > 0.3", with value, unit and threshold."""
    judgement = judge_value(value, rules.warn, rules.breach, rules.critical, rules.direction)
    reason = f"{subject} {format_value(value, unit)}"
    if judgement.threshold is not None:
        reason += f" {comparison(rules.direction)} {format_value(judgement.threshold, unit)}"
    threshold = judgement.threshold if judgement.threshold is not None else rules.breach
    return Verdict(watchdog, subject, judgement.status, reason, value, unit, threshold)

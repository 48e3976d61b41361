"""Judging a number against warn / breach / critical thresholds. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from supervisor.constants import DEADLINE_EPSILON_S
from supervisor.model import Status, Verdict
from supervisor.quantities import format_duration, format_value


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
    watchdog: str,
    subject: str,
    value: float,
    rules: ValueRules,
    unit: str = "",
    *,
    label: str | None = None,
    detail: str = "",
    threshold_unit: str | None = None,
) -> Verdict:
    """The verdict on a number: "<label> 0.42 > 0.3<detail>", with value, unit and threshold.

    `label` names the subject in the reason (the subject itself by default); the crossed
    threshold prints in `threshold_unit` (the value's unit by default).
    """
    judgement = judge_value(value, rules.warn, rules.breach, rules.critical, rules.direction)
    reason = f"{subject if label is None else label} {format_value(value, unit)}"
    if judgement.threshold is not None:
        shown = format_value(
            judgement.threshold, unit if threshold_unit is None else threshold_unit
        )
        reason += f" {comparison(rules.direction)} {shown}"
    threshold = judgement.threshold if judgement.threshold is not None else rules.breach
    return Verdict(watchdog, subject, judgement.status, reason + detail, value, unit, threshold)


@dataclass(frozen=True)
class AgeLevels:
    """Thresholds on an age in seconds: older than one crosses it."""

    warn: float | None
    breach: float | None
    critical: float | None


def age_verdict(
    watchdog: str,
    subject: str,
    said: str,
    age: float,
    since: float,
    levels: AgeLevels,
    detail: str = "",
) -> Verdict:
    """The verdict on an age counted from `since`: "<said> > 15s<detail>", unit "s".

    `said` is the reason up to the threshold ("BTC age 17.2s"). The deadline is the instant
    the age crosses the next threshold up, so the daemon can look again right then.
    """
    judgement = judge_above(age, levels.warn, levels.breach, levels.critical)
    reason = said
    if judgement.threshold is not None:
        reason += f" > {format_duration(judgement.threshold)}"
    deadline = None
    if judgement.next_threshold is not None:
        deadline = since + judgement.next_threshold + DEADLINE_EPSILON_S
    threshold = judgement.threshold if judgement.threshold is not None else levels.breach
    status = judgement.status
    return Verdict(watchdog, subject, status, reason + detail, age, "s", threshold, deadline)

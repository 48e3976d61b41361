"""Judging a number against warn / breach / critical thresholds. Pure."""

from __future__ import annotations

from dataclasses import dataclass

from supervisor.model import Status


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

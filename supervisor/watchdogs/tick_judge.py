"""Judging tick_freshness replies: a comparison per fresh instrument, a verdict for the rest.

An instrument whose tick parses cheaply (`quick_seconds`) and whose age is within the first
threshold is OK: all that is kept is the instant its age counts from. Everything else —
older ticks, missing keys, garbage, ISO-8601, streams, JSON — goes through the full
judgement, which builds the verdict and its reason. The OK verdicts are built only when
asked for (`Verdicts`), with the same reason the full judgement would give.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from supervisor.constants import DEADLINE_EPSILON_S
from supervisor.model import Status, Verdict, Verdicts
from supervisor.quantities import format_duration
from supervisor.timestamps import MAX_TEXT_LENGTH, UNIT_DIVISORS, quick_seconds
from supervisor.watchdogs.tick_config import TickFreshnessConfig
from supervisor.watchdogs.tick_parse import SESSION_NOTE, FullJudge

CHUNK = 1000  # replies judged together when they all look healthy


@dataclass(frozen=True)
class Reading:
    """What one reading found, per instrument (by index): `counted` is the instant an OK
    instrument's age counts from (math.inf for the others), `not_ok` the other verdicts,
    in index order. Never changed once made: a run's verdicts are built from it later."""

    counted: list[float]
    not_ok: dict[int, Verdict]
    opened_at: float | None


class TickJudge(FullJudge):
    def __init__(self, config: TickFreshnessConfig) -> None:
        super().__init__(config)
        # Plain values and hash fields may take the cheap path; JSON and streams may not.
        self._quick = not config.stream and config.json_field is None

    def judge(
        self, indices: Sequence[int], replies: Sequence[object], now: float, opened: float | None
    ) -> tuple[list[float], dict[int, Verdict]]:
        """(`counted` for each reply, in order; the verdicts that are not OK, by index)."""
        counted: list[float] = []
        not_ok: dict[int, Verdict] = {}
        for start in range(0, len(replies), CHUNK):
            chunk = replies[start : start + CHUNK]
            fresh = self._all_fresh(chunk, now, opened) if self._quick else None
            if fresh is not None:
                counted += fresh
            else:
                part = self._one_by_one(indices[start : start + CHUNK], chunk, now, opened)
                counted += part[0]
                not_ok.update(part[1])
        return counted, not_ok

    def _all_fresh(
        self, chunk: Sequence[object], now: float, opened: float | None
    ) -> list[float] | None:
        """A healthy feed's chunk in a few passes in C: the tick times (seconds) if every
        reply is a plain epoch number, all of one unit, after the session opened and within
        the first threshold; None for anything else, judged one by one."""
        try:
            joined = b"".join(chunk)  # type: ignore[arg-type]  # TypeError: None, an error
            numbers = list(map(float, chunk))  # type: ignore[arg-type]  # ValueError: garbage
        except (TypeError, ValueError):
            return None
        if b"_" in joined or max(map(len, chunk)) > MAX_TEXT_LENGTH:  # type: ignore[arg-type]
            return None  # what float() reads and parse_timestamp refuses
        if not math.isfinite(sum(numbers)):  # NaN or infinity somewhere
            return None
        low, high = min(numbers), max(numbers)
        divisor = _divisor(low, self.config.unit)
        if low <= 0 or high >= 1e20 or _divisor(high, self.config.unit) != divisor:
            return None
        floor = now - self.ok_for if opened is None else max(now - self.ok_for, opened)
        if low / divisor < floor or high / divisor > now + self.config.max_future_s:
            return None
        return numbers if divisor == 1.0 else [n / divisor for n in numbers]

    def _one_by_one(
        self, indices: Iterable[int], replies: Sequence[object], now: float, opened: float | None
    ) -> tuple[list[float], dict[int, Verdict]]:
        counted: list[float] = []
        keep = counted.append
        not_ok: dict[int, Verdict] = {}
        unit, quick = self.config.unit, self._quick
        floor = -math.inf if opened is None else opened
        ok_from = now - self.ok_for  # an age counted from here or later is within the threshold
        latest = now + self.config.max_future_s
        for i, reply in zip(indices, replies, strict=True):
            tick_at = quick_seconds(reply, unit) if quick else math.nan
            if tick_at <= latest:  # False for NaN
                since = tick_at if tick_at > floor else floor
                if since >= ok_from:
                    keep(since)
                    continue
            outcome = self.judge_one(i, reply, now, opened)
            if isinstance(outcome, Verdict):
                keep(math.inf)
                not_ok[i] = outcome
            else:
                keep(outcome)
        return counted, not_ok

    def verdicts(self, reading: Reading, now: float) -> Verdicts:
        """The run's verdicts at `now`; OK ones are built on demand from `reading`."""
        counted, not_ok, opened = reading.counted, reading.not_ok, reading.opened_at
        deadlines = [v.deadline for v in not_ok.values() if v.deadline is not None]
        values = [v.value for v in not_ok.values() if v.value is not None]
        oldest = min(counted, default=math.inf)
        if oldest < math.inf:
            deadlines.append(oldest + self.ok_for + DEADLINE_EPSILON_S)
            values.append(max(0.0, now - oldest))
        return Verdicts(
            len(counted),
            Status.OK,
            lambda i: self.ok_verdict(self.subjects[i], counted[i], now, opened),
            not_ok,
            earliest_deadline=min(deadlines, default=None),
            max_value=max(values, default=None),
        )

    def due(self, reading: Reading, now: float) -> list[int]:
        """The instruments whose deadline has come (an age reaching its next threshold)."""
        limit = now + DEADLINE_EPSILON_S
        due = [
            i for i, v in reading.not_ok.items() if v.deadline is not None and v.deadline <= limit
        ]
        cutoff = now - self.ok_for  # deadline = counted + ok_for + epsilon <= now + epsilon
        if min(reading.counted, default=math.inf) <= cutoff:
            due += [i for i, since in enumerate(reading.counted) if since <= cutoff]
        return sorted(due)

    def ok_verdict(
        self, instrument: str, since: float, now: float, opened: float | None
    ) -> Verdict:
        age = max(0.0, now - since)
        reason = f"{instrument} age {format_duration(age)}"
        if opened is not None and since == opened:
            reason += SESSION_NOTE
        deadline = since + self.ok_for + DEADLINE_EPSILON_S
        return Verdict(
            self.name, instrument, Status.OK, reason, age, "s", self.config.breach_s, deadline
        )


def _divisor(number: float, unit: str) -> float:
    """What turns `number` into seconds: the declared unit's, or its magnitude band's."""
    if unit != "auto":
        return UNIT_DIVISORS[unit]
    if number < 1e11:
        return 1.0
    if number < 1e14:
        return 1e3
    return 1e6 if number < 1e17 else 1e9

"""Judging tick_freshness replies: a comparison per fresh instrument, a verdict for the rest.

An instrument whose tick parses cheaply (`quick_seconds`) and whose age is within the first
threshold is OK: all that is kept is the instant its age counts from. Everything else —
older ticks, missing keys, garbage, ISO-8601, streams, JSON — goes through the full
judgement, which builds the verdict and its reason. The OK verdicts are built only when
asked for (`Verdicts`), with the same reason the full judgement would give.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import jmespath

from supervisor.constants import DEADLINE_EPSILON_S
from supervisor.errors import first_line
from supervisor.model import Status, Verdict, Verdicts
from supervisor.quantities import format_duration
from supervisor.timestamps import parse_stream_id, parse_timestamp, quick_seconds
from supervisor.watchdogs.thresholds import judge_above

if TYPE_CHECKING:
    from supervisor.watchdogs.tick_freshness import TickFreshnessConfig

SESSION_NOTE = " (no tick since the session opened)"


class Missing(LookupError):
    """The key (or field, or stream entry) holding the tick does not exist."""


@dataclass(frozen=True)
class Reading:
    """What one reading found, per instrument (by index): `counted` is the instant an OK
    instrument's age counts from (math.inf for the others), `not_ok` the other verdicts,
    in index order. Never changed once made: a run's verdicts are built from it later."""

    counted: list[float]
    not_ok: dict[int, Verdict]
    opened_at: float | None


class TickJudge:
    def __init__(self, config: TickFreshnessConfig) -> None:
        self.config = config
        self.name = config.name
        self.subjects = list(config.instruments)
        self._json_path = jmespath.compile(config.json_field) if config.json_field else None
        self.ok_for = config.warn_s if config.warn_s is not None else config.breach_s
        # Plain values and hash fields may take the cheap path; JSON and streams may not.
        self._quick = not config.stream and config.json_field is None

    def judge(
        self, indices: Iterable[int], replies: Sequence[object], now: float, opened: float | None
    ) -> tuple[list[float], dict[int, Verdict]]:
        """(`counted` for each reply, in order; the verdicts that are not OK, by index)."""
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

    # --- the full judgement of one instrument -----------------------------------------------

    def judge_one(self, i: int, reply: object, now: float, opened: float | None) -> Verdict | float:
        """The verdict, or for an OK instrument the instant its age counts from."""
        instrument = self.subjects[i]
        if isinstance(reply, Exception):
            reason = f"{instrument}: redis error: {first_line(reply)}"
            return Verdict(self.name, instrument, Status.UNKNOWN, reason)
        try:
            tick_at = self.tick_time(reply)
        except Missing as exc:
            return Verdict(self.name, instrument, Status.BREACH, f"{instrument}: no tick ({exc})")
        except ValueError as exc:
            reason = f"{instrument}: unreadable tick timestamp: {exc}"
            return Verdict(self.name, instrument, Status.UNKNOWN, reason)
        return self.judge_age(instrument, tick_at, now, opened)

    def tick_time(self, reply: object) -> float:
        """Epoch seconds of the newest tick in a reply; Missing or ValueError otherwise."""
        if self.config.stream:
            return self._stream_time(reply)
        if reply is None:
            what = f"field {self.config.field!r}" if self.config.field else "key"
            raise Missing(f"{what} missing")
        if self._json_path is not None:
            return parse_timestamp(self._json_value(reply), self.config.unit)
        return parse_timestamp(reply, self.config.unit)

    def _json_value(self, reply: object) -> object:
        try:
            document = json.loads(reply)  # type: ignore[arg-type]
        except (TypeError, ValueError, RecursionError):
            raise ValueError("value is not valid JSON") from None
        assert self._json_path is not None
        value = self._json_path.search(document) if isinstance(document, dict | list) else None
        if value is None:
            raise ValueError(f"JSON has no {self.config.json_field!r}")
        return value

    def _stream_time(self, reply: object) -> float:
        """From the raw `XREVRANGE ... COUNT 1` answer: [[id, [field, value, ...]]]."""
        if not isinstance(reply, list) or not reply:
            raise Missing("stream missing or empty")
        entry = reply[0]
        if not isinstance(entry, list | tuple) or len(entry) != 2:
            raise ValueError("unexpected stream entry shape")
        entry_id, fields = entry
        if not self.config.field:
            return parse_stream_id(entry_id)
        value = _field_of(fields, self.config.field.encode())
        if value is None:
            raise Missing(f"newest stream entry has no field {self.config.field!r}")
        return parse_timestamp(value, self.config.unit)

    def judge_age(
        self, instrument: str, tick_at: float, now: float, opened: float | None
    ) -> Verdict | float:
        ahead = tick_at - now
        if ahead > self.config.max_future_s:
            reason = f"{instrument}: tick timestamp {format_duration(ahead)} in the future"
            return Verdict(self.name, instrument, Status.UNKNOWN, reason + " (clock skew?)")
        since = max(tick_at, opened if opened is not None else -math.inf)
        age = max(0.0, now - since)
        cfg = self.config
        judgement = judge_above(age, cfg.warn_s, cfg.breach_s, cfg.critical_s)
        if judgement.status is Status.OK:
            return since
        reason = f"{instrument} age {format_duration(age)}"
        if judgement.threshold is not None:
            reason += f" > {format_duration(judgement.threshold)}"
        if since > tick_at:
            reason += SESSION_NOTE
        deadline = None
        if judgement.next_threshold is not None:
            deadline = since + judgement.next_threshold + DEADLINE_EPSILON_S
        threshold = judgement.threshold if judgement.threshold is not None else cfg.breach_s
        return Verdict(
            self.name, instrument, judgement.status, reason, age, "s", threshold, deadline
        )


def _field_of(fields: object, name: bytes) -> object:
    """A field's value in a stream entry: redis-py's dict, or RESP's flat [k, v, k, v]."""
    if isinstance(fields, dict):
        return fields.get(name)
    if isinstance(fields, list):
        pairs = iter(fields)
        return next((value for key, value in zip(pairs, pairs, strict=False) if key == name), None)
    return None

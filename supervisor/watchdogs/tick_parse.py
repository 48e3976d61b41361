"""The full judgement of one tick_freshness instrument: what its reply holds (a plain value,
a hash field, a JSON field, a stream entry), its age, its verdict and reason. The cheap path
for healthy instruments is in tick_judge; everything else comes here.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import jmespath

from supervisor.errors import EXPRESSION_FAILURES, first_line
from supervisor.model import Status, Verdict
from supervisor.quantities import format_duration
from supervisor.timestamps import parse_stream_id, parse_timestamp
from supervisor.watchdogs.thresholds import AgeLevels, age_verdict
from supervisor.watchdogs.tick_config import TickFreshnessConfig

SESSION_NOTE = " (no tick since the session opened)"


class Missing(LookupError):
    """The key (or field, or stream entry) holding the tick does not exist."""


class FullJudge:
    def __init__(self, config: TickFreshnessConfig) -> None:
        self.config = config
        self.name = config.name
        self.subjects = list(config.instruments)
        self.ok_for = config.warn_s if config.warn_s is not None else config.breach_s
        self._json_path = jmespath.compile(config.json_field) if config.json_field else None
        # A plain path ("meta.ts") is looked up directly: jmespath's interpreter costs more
        # than the rest of judging an instrument. Anything else goes through jmespath.
        self._json_fields = field_chain(self._json_path.parsed) if self._json_path else None

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
        if self._json_fields is not None:
            value = look_up(document, self._json_fields)
        elif isinstance(document, dict | list):
            try:  # a function fed mixed types (max_by) raises: this instrument's UNKNOWN only
                value = self._json_path.search(document)
            except EXPRESSION_FAILURES as exc:
                expression = self.config.json_field
                raise ValueError(f"jmespath {expression!r} failed: {type(exc).__name__}") from None
        else:
            value = None
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
        if age <= self.ok_for:
            return since
        cfg = self.config
        levels = AgeLevels(cfg.warn_s, cfg.breach_s, cfg.critical_s)
        said = f"{instrument} age {format_duration(age)}"
        note = SESSION_NOTE if since > tick_at else ""
        return age_verdict(self.name, instrument, said, age, since, levels, note)


def field_chain(node: Mapping[str, Any]) -> tuple[str, ...] | None:
    """The field names of a jmespath expression that is only fields ("a", "a.b.c"), or None."""
    if node.get("type") == "field":
        return (node["value"],)
    if node.get("type") != "subexpression":
        return None
    names: tuple[str, ...] = ()
    for child in node["children"]:
        part = field_chain(child)
        if part is None:
            return None
        names += part
    return names


def look_up(document: object, fields: tuple[str, ...]) -> object:
    """What jmespath gives for a chain of fields: None as soon as one is not an object."""
    for name in fields:
        if not isinstance(document, dict):
            return None
        document = document.get(name)
    return document


def _field_of(fields: object, name: bytes) -> object:
    """A field's value in a stream entry: redis-py's dict, or RESP's flat [k, v, k, v]."""
    if isinstance(fields, dict):
        return fields.get(name)
    if isinstance(fields, list):
        pairs = iter(fields)
        return next((value for key, value in zip(pairs, pairs, strict=False) if key == name), None)
    return None

"""tick_freshness: how old is the newest tick of each instrument?

Every instrument is read in one pipeline. The timestamp may be a plain value, a hash
`field`, a `json_field` (jmespath) of a JSON value, or the newest entry of a `stream` (its
id, or its `field`). During a session the age counts from the later of the tick and the
session open, so yesterday's last tick does not breach the moment the market opens.
"""

from __future__ import annotations

import math
from typing import Literal

import jmespath
from pydantic import Field, model_validator
from redis.asyncio import Redis

from supervisor.config.types import Duration, JmesPath, Text
from supervisor.config.watchdog_base import AgeThresholds, WatchdogBase
from supervisor.constants import DEADLINE_EPSILON_S
from supervisor.declarations import Need, WatchdogKind
from supervisor.errors import first_line
from supervisor.gauges import KindGauge
from supervisor.model import Status, Verdict
from supervisor.quantities import format_duration
from supervisor.sources.redis import Command, batch
from supervisor.timestamps import TimestampUnit, parse_stream_id, parse_timestamp
from supervisor.watchdogs.base import Watchdog
from supervisor.watchdogs.json_field import json_field
from supervisor.watchdogs.thresholds import judge_above


class Missing(LookupError):
    """The key (or field, or stream entry) holding the tick does not exist."""


class TickFreshnessConfig(WatchdogBase, AgeThresholds):
    kind: Literal["tick_freshness"]
    key: Text
    instruments: list[Text] = Field(min_length=1)
    field: Text | None = None  # a hash field
    json_field: JmesPath | None = None  # a field of a JSON value
    stream: bool = False  # the key is a stream: the last entry's id (or its `field`)
    unit: TimestampUnit = "auto"
    max_future_s: Duration = Field(2.0, alias="max_future")

    @model_validator(mode="after")
    def _one_layout(self) -> TickFreshnessConfig:
        if self.field and self.json_field:
            raise ValueError("set at most one of 'field' and 'json_field'")
        if self.stream and self.json_field:
            raise ValueError("'json_field' does not apply to a 'stream'")
        if len(set(self.instruments)) != len(self.instruments):
            raise ValueError("'instruments' lists an instrument twice")
        if len(self.instruments) > 1 and "{instrument}" not in self.key:
            raise ValueError("with several instruments, 'key' must contain '{instrument}'")
        return self


class TickFreshness(Watchdog):
    config: TickFreshnessConfig

    def __init__(self, config: TickFreshnessConfig, redis: Redis) -> None:
        super().__init__(config)
        self.redis = redis
        self._json_path = jmespath.compile(config.json_field) if config.json_field else None

    @property
    def subjects(self) -> list[str]:
        return list(self.config.instruments)

    def key_for(self, instrument: str) -> str:
        return self.config.key.replace("{instrument}", instrument)

    def command_for(self, instrument: str) -> Command:
        key = self.key_for(instrument)
        if self.config.stream:
            return ("XREVRANGE", key, "+", "-", "COUNT", 1)
        if self.config.field:
            return ("HGET", key, self.config.field)
        return ("GET", key)

    async def check(self, now: float, session_opened_at: float | None) -> list[Verdict]:
        replies = await batch(self.redis, [self.command_for(i) for i in self.subjects])
        return [
            self.judge(instrument, reply, now, session_opened_at)
            for instrument, reply in zip(self.subjects, replies, strict=True)
        ]

    def judge(self, instrument: str, reply: object, now: float, opened_at: float | None) -> Verdict:
        if isinstance(reply, Exception):
            reason = f"{instrument}: redis error: {first_line(reply)}"
            return Verdict(self.name, instrument, Status.UNKNOWN, reason)
        try:
            tick_at = self.tick_time(reply)
        except Missing as exc:
            reason = f"{instrument}: no tick ({exc})"
            return Verdict(self.name, instrument, Status.BREACH, reason)
        except ValueError as exc:
            reason = f"{instrument}: unreadable tick timestamp: {exc}"
            return Verdict(self.name, instrument, Status.UNKNOWN, reason)
        return self.judge_age(instrument, tick_at, now, opened_at)

    def tick_time(self, reply: object) -> float:
        """Epoch seconds of the newest tick in a reply; Missing or ValueError otherwise."""
        if self.config.stream:
            return self._stream_time(reply)
        if reply is None:
            what = f"field {self.config.field!r}" if self.config.field else "key"
            raise Missing(f"{what} missing")
        if self._json_path is not None:
            assert self.config.json_field is not None
            value = json_field(self._json_path, self.config.json_field, reply)
            return parse_timestamp(value, self.config.unit)
        return parse_timestamp(reply, self.config.unit)

    def _json_value(self, reply: object) -> object:
        """The shared reader turns whatever jmespath raises on this document (a function fed
        mixed types raises TypeError) into a ValueError: this instrument's UNKNOWN, never an
        exception that blinds the whole watchdog to the other instruments."""
        assert self._json_path is not None and self.config.json_field is not None
        return json_field(self._json_path, self.config.json_field, reply)

    def _stream_time(self, reply: object) -> float:
        if not isinstance(reply, list) or not reply:
            raise Missing("stream missing or empty")
        entry = reply[0]
        if not isinstance(entry, list | tuple) or len(entry) != 2:
            raise ValueError("unexpected stream entry shape")
        entry_id, fields = entry
        if not self.config.field:
            return parse_stream_id(entry_id)
        value = fields.get(self.config.field.encode()) if isinstance(fields, dict) else None
        if value is None:
            raise Missing(f"newest stream entry has no field {self.config.field!r}")
        return parse_timestamp(value, self.config.unit)

    def judge_age(
        self, instrument: str, tick_at: float, now: float, opened_at: float | None
    ) -> Verdict:
        ahead = tick_at - now
        if ahead > self.config.max_future_s:
            reason = f"{instrument}: tick timestamp {format_duration(ahead)} in the future"
            return Verdict(self.name, instrument, Status.UNKNOWN, reason + " (clock skew?)")
        counted_from = max(tick_at, opened_at or -math.inf)
        age = max(0.0, now - counted_from)
        cfg = self.config
        judgement = judge_above(age, cfg.warn_s, cfg.breach_s, cfg.critical_s)
        reason = f"{instrument} age {format_duration(age)}"
        if judgement.threshold is not None:
            reason += f" > {format_duration(judgement.threshold)}"
        if counted_from > tick_at:
            reason += " (no tick since the session opened)"
        deadline = None
        if judgement.next_threshold is not None:
            deadline = counted_from + judgement.next_threshold + DEADLINE_EPSILON_S
        return Verdict(
            self.name,
            instrument,
            judgement.status,
            reason,
            value=age,
            unit="s",
            threshold=judgement.threshold if judgement.threshold is not None else cfg.breach_s,
            deadline=deadline,
        )


KIND = WatchdogKind(
    config=TickFreshnessConfig,
    build=lambda config, clients: TickFreshness(config, clients.redis),
    needs=frozenset({Need.REDIS}),
    gauge=KindGauge(
        "supervisor_tick_age_seconds", "Age of the newest tick per instrument.", "instrument"
    ),
)

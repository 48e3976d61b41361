"""redis_value: a number kept in Redis, judged against thresholds in either direction.

The number is the key's plain value, a hash `field`, or a `json_field` (jmespath) of the
key's JSON value. One verdict; its subject is the key, or `key[field]` / `key[json_field]`.
`direction = "above"` (default): worse as the value grows, `value > threshold` crosses it;
`"below"`: worse as it falls, `value < threshold` crosses it. Equal never crosses.

    [[watchdogs]]
    name = "exposure"
    kind = "redis_value"
    key = "risk:state"
    json_field = "gross_exposure_ratio"
    warn = 0.8
    breach = 1.0
    unit = "ratio"

| what is read | verdict |
|---|---|
| a number (numeric text; a JSON number or numeric string) | OK / WARN / BREACH / CRITICAL |
| key, field or JSON field missing | UNKNOWN "missing" |
| anything else (text, a boolean, NaN, infinity, not JSON, not UTF-8) | UNKNOWN, saying what |
| Redis down, wrong key type | UNKNOWN |

A missing value is UNKNOWN, not BREACH: this kind does not know whether absence is healthy
(a counter not yet written) or not; set `fail_closed = true` to treat a value that stays
unreadable beyond `unknown_grace` as a BREACH. Booleans are refused rather than read as 0/1.
"""

from __future__ import annotations

from typing import Literal

import jmespath
from pydantic import Field, model_validator
from redis.asyncio import Redis

from supervisor.config.types import JmesPath, Text
from supervisor.config.watchdog_base import ValueThresholds, WatchdogBase
from supervisor.declarations import Need
from supervisor.errors import first_line
from supervisor.model import Status, Verdict
from supervisor.sources.redis import Command, batch
from supervisor.values import parse_number
from supervisor.watchdogs.base import Watchdog, WatchdogKind
from supervisor.watchdogs.json_field import NoField, json_field
from supervisor.watchdogs.thresholds import value_verdict


class RedisValueConfig(WatchdogBase, ValueThresholds):
    kind: Literal["redis_value"]
    key: Text
    field: Text | None = None  # a hash field
    json_field: JmesPath | None = None  # a field of a JSON value
    unit: str = Field("", max_length=16)  # shown with the value ("s", "ratio", "orders"...)

    @model_validator(mode="after")
    def _one_layout(self) -> RedisValueConfig:
        if self.field is not None and self.json_field is not None:
            raise ValueError("set at most one of 'field' and 'json_field'")
        return self


class RedisValue(Watchdog):
    config: RedisValueConfig

    def __init__(self, config: RedisValueConfig, redis: Redis) -> None:
        super().__init__(config)
        self.redis = redis
        self._json_path = jmespath.compile(config.json_field) if config.json_field else None

    @property
    def subject(self) -> str:
        inner = self.config.field or self.config.json_field
        return f"{self.config.key}[{inner}]" if inner else self.config.key

    @property
    def subjects(self) -> list[str]:
        return [self.subject]

    def command(self) -> Command:
        if self.config.field is not None:
            return ("HGET", self.config.key, self.config.field)
        return ("GET", self.config.key)

    async def check(self, now: float, session_opened_at: float | None) -> list[Verdict]:
        (reply,) = await batch(self.redis, [self.command()])
        return [self.judge(reply)]

    def judge(self, reply: object) -> Verdict:
        """The verdict for one GET / HGET reply. Never raises."""
        if isinstance(reply, Exception):
            return self.unknown(f"redis error: {first_line(reply)}")
        try:
            value = self.number(reply)
        except ValueError as exc:
            return self.unknown(str(exc))
        return value_verdict(self.name, self.subject, value, self.config, self.config.unit)

    def number(self, reply: object) -> float:
        """The number in a reply; ValueError saying why there is none."""
        if reply is None:
            what = f"field {self.config.field!r}" if self.config.field else "key"
            raise ValueError(f"missing ({what} does not exist)")
        if self._json_path is None:
            return parse_number(reply)
        assert self.config.json_field is not None
        try:
            found = json_field(self._json_path, self.config.json_field, reply)
        except NoField as exc:
            raise ValueError(f"missing ({exc})") from None
        return parse_number(found)

    def unknown(self, problem: str) -> Verdict:
        cfg = self.config
        reason = f"{self.subject}: {problem}"
        return Verdict(self.name, self.subject, Status.UNKNOWN, reason, threshold=cfg.breach)


KIND = WatchdogKind(
    config=RedisValueConfig,
    build=lambda config, clients: RedisValue(config, clients.redis),
    needs=frozenset({Need.REDIS}),
)

"""cb_staleness: how long since the circuit breaker's owner last updated it?

The breaker is only a safety net while something keeps it current: a breaker whose owner
died still says OPEN, and nothing trips it. The last update is read from exactly one of:
a `json_field` (jmespath) of the key's JSON value (the layout `redis_breaker` writes), a
hash `field` of the key, or a separate `timestamp_key`. The key's existence and the
timestamp are read in one pipeline. One verdict, subject = the key, value = the age in
seconds (`supervisor_cb_staleness_seconds{watchdog}`), with a deadline at the next
threshold so the daemon re-checks right when it is crossed.

| what is seen | verdict |
|---|---|
| age within `warn` (default 5 s, the runbook's SLA) | OK |
| age above `warn` / `breach` (default 10 s: page) / `critical` (unset) | WARN / BREACH / CRITICAL |
| the breaker key missing | BREACH: its owner is not running |
| `timestamp_key` missing | BREACH: its owner is not updating it |
| no such field in the JSON / hash, unparseable timestamp | UNKNOWN, saying why |
| a timestamp more than `max_future` (2 s) ahead | UNKNOWN (clock skew), never "fresh" |
| Redis down, wrong key type | UNKNOWN |

A missing field is UNKNOWN rather than BREACH: the key exists, so an owner wrote it, and a
layout that does not match the config is a config problem to see, not a dead owner.
`fail_closed` is on by default for this kind: an UNKNOWN that lasts longer than
`unknown_grace` is treated as a BREACH by the policy — a breaker nobody can vouch for is
not trusted.

The supervisor's own `redis_breaker` keeps the owner's `updated_at` when it trips, so a trip
by us does not make a stale breaker look fresh.
"""

from __future__ import annotations

from typing import Literal

import jmespath
from pydantic import Field, model_validator
from redis.asyncio import Redis

from supervisor.config.types import Duration, JmesPath, PositiveDuration, Text
from supervisor.config.watchdog_base import AgeThresholds, WatchdogBase
from supervisor.declarations import Need
from supervisor.errors import first_line
from supervisor.gauges import KindGauge
from supervisor.model import Status, Verdict
from supervisor.quantities import format_duration
from supervisor.sources.redis import Command, batch
from supervisor.timestamps import TimestampUnit, parse_timestamp
from supervisor.watchdogs.base import Watchdog, WatchdogKind
from supervisor.watchdogs.json_field import json_field
from supervisor.watchdogs.thresholds import AgeLevels, age_verdict


class Gone(LookupError):
    """What holds the last-update time does not exist: the owner is not writing it."""


class CbStalenessConfig(WatchdogBase, AgeThresholds):
    """The breaker's last update: exactly one of `json_field` (of the key's JSON value),
    `field` (of the key's hash) or `timestamp_key` (a separate key holding the timestamp)."""

    kind: Literal["cb_staleness"]
    key: Text
    field: Text | None = None
    json_field: JmesPath | None = None
    timestamp_key: Text | None = None
    unit: TimestampUnit = "auto"
    warn_s: PositiveDuration | None = Field(5.0, alias="warn")  # the runbook's SLA: <= 5 s
    breach_s: PositiveDuration = Field(10.0, alias="breach")  # page above 10 s
    max_future_s: Duration = Field(2.0, alias="max_future")
    fail_closed: bool = True

    @model_validator(mode="after")
    def _one_layout(self) -> CbStalenessConfig:
        layouts = [self.field, self.json_field, self.timestamp_key]
        if sum(layout is not None for layout in layouts) != 1:
            raise ValueError("set exactly one of 'json_field', 'field' and 'timestamp_key'")
        return self


class CbStaleness(Watchdog):
    config: CbStalenessConfig

    def __init__(self, config: CbStalenessConfig, redis: Redis) -> None:
        super().__init__(config)
        self.redis = redis
        self._json_path = jmespath.compile(config.json_field) if config.json_field else None

    @property
    def subjects(self) -> list[str]:
        return [self.config.key]

    def commands(self) -> list[Command]:
        cfg = self.config
        if cfg.timestamp_key is not None:
            return [("EXISTS", cfg.key), ("GET", cfg.timestamp_key)]
        if cfg.field is not None:
            return [("EXISTS", cfg.key), ("HGET", cfg.key, cfg.field)]
        return [("EXISTS", cfg.key), ("GET", cfg.key)]

    async def check(self, now: float, session_opened_at: float | None) -> list[Verdict]:
        exists, reply = await batch(self.redis, self.commands())
        return [self.judge(exists, reply, now)]

    def judge(self, exists: object, reply: object, now: float) -> Verdict:
        """The verdict from the EXISTS reply and the timestamp reply. Never raises."""
        key = self.config.key
        for answer in (exists, reply):
            if isinstance(answer, Exception):
                return self._verdict(Status.UNKNOWN, f"redis error: {first_line(answer)}")
        if isinstance(exists, bool) or not isinstance(exists, int):
            # Only a real "0 keys" may say the owner is gone (a BREACH); anything else is odd.
            return self._verdict(
                Status.UNKNOWN, f"unexpected EXISTS reply: a {type(exists).__name__}"
            )
        if exists == 0:
            return self._verdict(Status.BREACH, "breaker state missing: its owner is not running")
        try:
            updated_at = self.updated_at(reply)
        except Gone as exc:
            return self._verdict(Status.BREACH, str(exc))
        except ValueError as exc:
            return self._verdict(Status.UNKNOWN, f"unreadable last update: {exc}")
        return self.judge_age(key, updated_at, now)

    def _verdict(self, status: Status, problem: str) -> Verdict:
        key = self.config.key
        return Verdict(self.name, key, status, f"{key}: {problem}", threshold=self.config.breach_s)

    def updated_at(self, reply: object) -> float:
        """Epoch seconds of the last update; Gone or ValueError otherwise."""
        cfg = self.config
        if reply is None:
            if cfg.timestamp_key is not None:
                raise Gone(
                    f"timestamp key {cfg.timestamp_key} missing: its owner is not writing it"
                )
            if cfg.field is not None:
                raise ValueError(f"hash has no field {cfg.field!r}")
            raise Gone("breaker state missing: its owner is not running")  # deleted meanwhile
        if self._json_path is not None:
            assert cfg.json_field is not None
            value = json_field(self._json_path, cfg.json_field, reply)
            return parse_timestamp(value, cfg.unit)
        return parse_timestamp(reply, cfg.unit)

    def judge_age(self, key: str, updated_at: float, now: float) -> Verdict:
        cfg = self.config
        ahead = updated_at - now
        if ahead > cfg.max_future_s:
            reason = f"{key}: last update {format_duration(ahead)} in the future (clock skew?)"
            return Verdict(self.name, key, Status.UNKNOWN, reason, threshold=cfg.breach_s)
        age = max(0.0, now - updated_at)
        levels = AgeLevels(cfg.warn_s, cfg.breach_s, cfg.critical_s)
        said = f"{key}: last update {format_duration(age)} ago"
        return age_verdict(self.name, key, said, age, updated_at, levels)


KIND = WatchdogKind(
    config=CbStalenessConfig,
    build=lambda config, clients: CbStaleness(config, clients.redis),
    needs=frozenset({Need.REDIS}),
    gauge=KindGauge(
        "supervisor_cb_staleness_seconds", "Age of the circuit breaker's last update.", None
    ),
)

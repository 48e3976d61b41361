"""poison_queue: how many deliveries gave up for good, and how long the oldest has waited.

Two subjects. "poison" is the count from `query` (unit "rows"; it feeds
`supervisor_poison_queue_size{watchdog}`). "oldest", only when `oldest_query` is set, is the
age in seconds of the oldest poison row, judged against the optional `oldest_warn`,
`oldest_breach`, `oldest_critical` durations (without them it is measured and published,
always OK). Both queries run at once through the shared read-only Postgres pool, each with
the watchdog's `timeout` as its deadline; a failing query makes only its own subject UNKNOWN.

Thresholds mean what they mean everywhere else: `count > threshold` crosses it, equal does
not. The Track 7 runbook's SLA is "poison queue size: target 0, page above 10". "Above 10"
is `breach = 10`. "Target 0" means one poison row is already off target, which is
`warn = 0`; the documented example `warn = 1` is valid too and tolerates a single row. To
follow the runbook:

    [[watchdogs]]
    name = "alert_poison_queue"
    kind = "poison_queue"
    query = "SELECT count(*) FROM alert_deliveries WHERE status = 'poison'"
    oldest_query = "SELECT min(failed_at) FROM alert_deliveries WHERE status = 'poison'"
    warn = 0                 # target 0: any poison row warns (#alerts-ops)
    breach = 10              # page above 10
    oldest_warn = "15m"      # a delivery nobody has retried for 15 minutes
    oldest_breach = "1h"
    interval = "15s"

| what the queries return | verdict |
|---|---|
| count <= warn; > warn / breach / critical | OK; WARN / BREACH / CRITICAL ("... 12 rows > 10") |
| count NULL, negative, not a number, no row | UNKNOWN, with the reason |
| oldest: timestamptz, timestamp (read as UTC), epoch s/ms/us/ns, ISO-8601 text | its age, judged |
| oldest: NULL and the count is 0 (or unknown) | OK, "no poison rows" |
| oldest: NULL but the count says there are rows | UNKNOWN (the timestamp column is NULL) |
| oldest: more than 2 s in the future | UNKNOWN ("clock skew?"), never "fresh" |
| a query error (syntax, missing table, a write) | UNKNOWN: the Postgres error class and message |
| database down, no answer within `timeout` | UNKNOWN "postgres: ..."; judged again once back |

Like tick_freshness, an "oldest" verdict carries the instant its age crosses the next
threshold, so the daemon re-runs the watchdog then instead of up to one interval late.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, time
from typing import Literal

from pydantic import Field, model_validator

from supervisor.config.types import Duration, Query
from supervisor.config.watchdog_base import (
    AlertLevels,
    ValueThresholds,
    WatchdogBase,
    check_order,
)
from supervisor.declarations import Need
from supervisor.gauges import KindGauge
from supervisor.model import Status, Verdict
from supervisor.quantities import format_duration
from supervisor.timestamps import parse_timestamp
from supervisor.values import parse_number
from supervisor.watchdogs.base import Watchdog, WatchdogKind
from supervisor.watchdogs.sql_value import (
    Reading,
    RowSource,
    read_scalar,
    require_postgres,
    to_number,
)
from supervisor.watchdogs.thresholds import AgeLevels, age_verdict, value_verdict

COUNT = "poison"
OLDEST = "oldest"
MAX_FUTURE_S = 2.0  # clocks differ a little; further ahead than this is not believable


def to_count(raw: object) -> float:
    """A row count from a query's value; ValueError saying why it is not one."""
    count = to_number(raw)
    if count < 0:
        raise ValueError(f"count is negative ({count:g})")
    return count


def to_epoch(raw: object) -> float:
    """Epoch seconds from a timestamp column's value; ValueError saying why not."""
    try:
        at = _epoch(raw)
    except (OverflowError, OSError):
        raise ValueError(f"timestamp out of range: {raw!r:.60}") from None
    if at <= 0:
        raise ValueError(f"timestamp before 1970: {raw!r:.60}")
    return at


def _epoch(raw: object) -> float:
    if isinstance(raw, datetime):
        return (raw if raw.tzinfo is not None else raw.replace(tzinfo=UTC)).timestamp()
    if isinstance(raw, date):
        return datetime.combine(raw, time(), UTC).timestamp()
    if isinstance(raw, str | bytes | bytearray):
        return parse_timestamp(raw)
    return parse_timestamp(parse_number(raw))  # int, float, Decimal epochs; refuses the rest


class PoisonQueueConfig(WatchdogBase, ValueThresholds):
    kind: Literal["poison_queue"]
    query: Query  # a count of poison rows: `count > warn` warns
    oldest_query: Query | None = None  # the oldest row's timestamp, or NULL
    oldest_warn_s: Duration | None = Field(None, alias="oldest_warn")
    oldest_breach_s: Duration | None = Field(None, alias="oldest_breach")
    oldest_critical_s: Duration | None = Field(None, alias="oldest_critical")

    def alert_levels(self, subject: str) -> AlertLevels:
        if subject == OLDEST:
            return AlertLevels(self.oldest_warn_s, self.oldest_breach_s)
        return AlertLevels(self.warn, self.breach)

    @model_validator(mode="after")
    def _poison_rules(self) -> PoisonQueueConfig:
        if self.direction != "above":
            raise ValueError("a poison queue gets worse as it grows: 'direction' must be 'above'")
        oldest = (self.oldest_warn_s, self.oldest_breach_s, self.oldest_critical_s)
        if self.oldest_query is None and any(t is not None for t in oldest):
            raise ValueError("'oldest_warn/breach/critical' need an 'oldest_query'")
        try:
            check_order(*oldest, "above")
        except ValueError as exc:
            raise ValueError(f"oldest thresholds: {exc}") from None
        return self


class PoisonQueue(Watchdog):
    config: PoisonQueueConfig

    def __init__(self, config: PoisonQueueConfig, postgres: RowSource) -> None:
        super().__init__(config)
        self.postgres = postgres

    @property
    def subjects(self) -> list[str]:
        return [COUNT, OLDEST] if self.config.oldest_query else [COUNT]

    async def check(self, now: float, session_opened_at: float | None) -> list[Verdict]:
        timeout_s = self.config.check_timeout_s
        queries = [self.config.query]
        if self.config.oldest_query:
            queries.append(self.config.oldest_query)
        readings = await asyncio.gather(
            *(read_scalar(self.postgres, query, timeout_s) for query in queries)
        )
        count = self.judge_count(readings[0])
        if len(readings) == 1:
            return [count]
        return [count, self.judge_oldest(readings[1], count.value, now)]

    def judge_count(self, reading: Reading) -> Verdict:
        if reading.problem is not None:
            return self._unknown(COUNT, f"poison queue: {reading.problem}")
        try:
            count = to_count(reading.value)
        except ValueError as exc:
            return self._unknown(COUNT, f"poison queue: {exc}")
        return value_verdict(
            self.name, COUNT, count, self.config, "rows", label="poison queue", threshold_unit=""
        )

    def judge_oldest(self, reading: Reading, count: float | None, now: float) -> Verdict:
        if reading.problem is not None:
            return self._unknown(OLDEST, f"oldest poison row: {reading.problem}")
        if reading.value is None:
            if count:
                why = f"oldest_query returned NULL but the queue holds {count:g} rows"
                return self._unknown(OLDEST, f"oldest poison row: {why}")
            return Verdict(self.name, OLDEST, Status.OK, "no poison rows", unit="s")
        try:
            oldest_at = to_epoch(reading.value)
        except ValueError as exc:
            return self._unknown(OLDEST, f"oldest poison row: unreadable timestamp: {exc}")
        return self.judge_age(oldest_at, now)

    def judge_age(self, oldest_at: float, now: float) -> Verdict:
        ahead = oldest_at - now
        if ahead > MAX_FUTURE_S:
            reason = f"oldest poison row: timestamp {format_duration(ahead)} in the future"
            return self._unknown(OLDEST, reason + " (clock skew?)")
        age = max(0.0, now - oldest_at)
        cfg = self.config
        levels = AgeLevels(cfg.oldest_warn_s, cfg.oldest_breach_s, cfg.oldest_critical_s)
        said = f"oldest poison row age {format_duration(age)}"
        return age_verdict(self.name, OLDEST, said, age, oldest_at, levels)

    def _unknown(self, subject: str, reason: str) -> Verdict:
        return Verdict(self.name, subject, Status.UNKNOWN, reason)


KIND = WatchdogKind(
    config=PoisonQueueConfig,
    build=lambda config, clients: PoisonQueue(config, require_postgres(clients.postgres)),
    needs=frozenset({Need.POSTGRES}),
    gauge=KindGauge(
        "supervisor_poison_queue_size", "Rows in the poison queue.", None, subject="poison"
    ),
)

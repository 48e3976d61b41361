"""sql_value: a number from a scalar query, judged against thresholds in either direction.

The value is the first column of the first row of `query`, run through the shared Postgres
pool (read-only connections with a `statement_timeout`; see supervisor/sources/postgres.py).
The verdict's subject is `label`, or the watchdog's name. `direction = "above"` (default):
worse as the value grows, `value > threshold` crosses it; `"below"`: worse as it falls,
`value < threshold` crosses it. Equal to a threshold never crosses it.

    [[watchdogs]]
    name = "open_orders_stale"
    kind = "sql_value"
    query = "SELECT count(*) FROM orders WHERE status = 'open' AND updated_at < now() - '5m'"
    warn = 0          # one stale open order already warns
    breach = 5

| what the query returns | verdict |
|---|---|
| a number (integer, numeric, float, numeric text) | judged: OK / WARN / BREACH / CRITICAL |
| an interval (`now() - max(ts)`) | judged as seconds (unit "s" unless `unit` is set) |
| no row / no column / NULL | UNKNOWN: "query returned no rows" / "... no columns" / "... NULL" |
| anything else (text, boolean, NaN, infinity) | UNKNOWN, saying what it got |
| a query error (syntax, missing table, a write) | UNKNOWN: the Postgres error class and message |
| database down, or no answer within `timeout` | UNKNOWN: "postgres: ..." |

Booleans are refused rather than read as 0/1: write `SELECT (x)::int` to mean it. The
helpers here (reading one scalar, turning it into a number) are shared with poison_queue.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal, Protocol

from pydantic import Field

from supervisor.config.types import Query, Text
from supervisor.config.watchdog_base import ValueThresholds, WatchdogBase
from supervisor.declarations import Need
from supervisor.errors import ConfigError, SourceError
from supervisor.model import Status, Verdict
from supervisor.sources.postgres import Postgres
from supervisor.values import parse_number
from supervisor.watchdogs.base import Watchdog, WatchdogKind
from supervisor.watchdogs.thresholds import value_verdict


class RowSource(Protocol):
    """What these watchdogs read through: `Postgres`, or a fake in tests."""

    async def fetch_row(self, query: str, timeout_s: float) -> object: ...


def require_postgres(postgres: Postgres | None) -> Postgres:
    """The configured pool; protection.unmet_needs refuses such a config before this."""
    if postgres is None:
        raise ConfigError(["this watchdog kind needs [postgres] dsn"])
    return postgres


@dataclass(frozen=True)
class Reading:
    """The first value of a query's first row (None is SQL NULL), or why there is none."""

    value: object = None
    problem: str | None = None


_NOTHING = object()


def first_value(row: object) -> object:
    """The first column of a row; ValueError when there is no row or no column."""
    if row is None:
        raise ValueError("query returned no rows")
    if isinstance(row, str | bytes | bytearray) or not isinstance(row, Iterable):
        raise ValueError(f"unexpected row type {type(row).__name__}")
    first = next(iter(row), _NOTHING)
    if first is _NOTHING:
        raise ValueError("query returned no columns")
    return first


async def read_scalar(source: RowSource, query: str, timeout_s: float) -> Reading:
    try:
        row = await source.fetch_row(query, timeout_s)
    except SourceError as exc:
        return Reading(problem=str(exc))
    try:
        return Reading(first_value(row))
    except ValueError as exc:
        return Reading(problem=str(exc))


def to_number(raw: object) -> float:
    """A finite float from a query's value; ValueError saying why not."""
    if raw is None:
        raise ValueError("query returned NULL")
    try:
        if isinstance(raw, timedelta):
            seconds = raw.total_seconds()
            if not math.isfinite(seconds):
                raise ValueError(f"not a finite interval: {raw!r}")
            return seconds
        return parse_number(raw)
    except OverflowError:  # an integer beyond any float
        raise ValueError("number too large") from None


class SqlValueConfig(WatchdogBase, ValueThresholds):
    kind: Literal["sql_value"]
    query: Query  # the first column of the first row is the value
    label: Text | None = Field(None, max_length=64)  # the subject; default: name
    unit: str = Field("", max_length=16)  # shown with the value ("s", "ratio", "orders"...)


class SqlValue(Watchdog):
    config: SqlValueConfig

    def __init__(self, config: SqlValueConfig, postgres: RowSource) -> None:
        super().__init__(config)
        self.postgres = postgres

    @property
    def subject(self) -> str:
        return self.config.label or self.name

    @property
    def subjects(self) -> list[str]:
        return [self.subject]

    async def check(self, now: float, session_opened_at: float | None) -> list[Verdict]:
        reading = await read_scalar(self.postgres, self.config.query, self.config.check_timeout_s)
        return [self.judge(reading)]

    def judge(self, reading: Reading) -> Verdict:
        if reading.problem is not None:
            return self.unknown(reading.problem)
        try:
            value = to_number(reading.value)
        except ValueError as exc:
            return self.unknown(str(exc))
        unit = self.config.unit or ("s" if isinstance(reading.value, timedelta) else "")
        return value_verdict(self.name, self.subject, value, self.config, unit)

    def unknown(self, problem: str) -> Verdict:
        return Verdict(self.name, self.subject, Status.UNKNOWN, f"{self.subject}: {problem}")


KIND = WatchdogKind(
    config=SqlValueConfig,
    build=lambda config, clients: SqlValue(config, require_postgres(clients.postgres)),
    needs=frozenset({Need.POSTGRES}),
)

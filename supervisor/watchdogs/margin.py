"""margin: how much of the account's equity is tied up as margin? One subject: "utilization".

Read from the broker-facing API as JSON (`url`, `headers` carry the token) or, for stacks
that publish it there, from a Redis hash (`redis_key`). The ratio is either read directly
(`utilization`) or computed as `used / equity`. In the JSON form those three name jmespaths
into the answer; in the hash form they name hash fields.

    [[watchdogs]]
    name = "margin"
    kind = "margin"
    url = "http://127.0.0.1:8100/api/oanda/account"
    headers = { Authorization = "Bearer ${OANDA_TOKEN}" }
    used = "account.marginUsed"       # OANDA sends numbers as strings: "1234.5000" parses
    equity = "account.NAV"
    warn = 0.25
    breach = 0.30
    critical = 0.50
    fail_closed = true                # recommended: see "equity <= 0" below

| what it reads | verdict |
|---|---|
| ratio <= warn | OK, "utilization 0.120 (used 1200 / equity 10000)" |
| ratio > warn / breach / critical | WARN / BREACH / CRITICAL, "utilization 0.420 > 0.300 (...)" |
| a field missing, or not a number (bool, text, NaN) | UNKNOWN naming the field and its path |
| equity <= 0 | UNKNOWN "equity 0 <= 0: ratio undefined" |
| used < 0 | UNKNOWN: not a margin figure |
| HTTP non-2xx, body not JSON, hash missing, wrong type | UNKNOWN with the reason |
| no answer (refused, timed out), Redis down | UNKNOWN "utilization: http: ..." |

Why equity <= 0 is UNKNOWN rather than CRITICAL: the ratio is undefined, and a zero NAV is
far more often a broker API glitch or a not-yet-funded sub-account than a blown account;
acting on it automatically would flatten on a data error. It is never OK, though: with
`fail_closed = true` (recommended for margin) an UNKNOWN lasting `unknown_grace` counts as a
BREACH, so a real wipe-out still trips within the grace period. The thresholds compare the
ratio strictly (`ratio > breach`); `direction` is refused unless "above".

The ratio feeds `supervisor_margin_utilization_ratio{watchdog}` (unit "ratio").
"""

from __future__ import annotations

import math
from typing import Literal

import httpx
import jmespath
from pydantic import model_validator
from redis.asyncio import Redis

from supervisor.config.types import Headers, HttpUrl, Text, check_jmespath
from supervisor.config.watchdog_base import ValueThresholds, WatchdogBase
from supervisor.declarations import Need
from supervisor.errors import SourceError, first_line
from supervisor.gauges import KindGauge
from supervisor.model import Status, Verdict
from supervisor.sources.redis import batch
from supervisor.values import parse_number
from supervisor.watchdogs.base import Watchdog, WatchdogKind
from supervisor.watchdogs.http_json import fetch_json, require_http, search
from supervisor.watchdogs.thresholds import value_verdict

SUBJECT = "utilization"
FIELDS = ("utilization", "used", "equity")


def money(amount: float) -> str:
    """4200.0 -> "4200", 1234.5 -> "1234.5": readable amounts for reasons."""
    return f"{amount:.2f}".rstrip("0").rstrip(".")


class MarginConfig(WatchdogBase, ValueThresholds):
    """Exactly one source: `url` (HTTP JSON; used/equity/utilization are jmespaths) or
    `redis_key` (a hash; used/equity/utilization name its fields). Either `utilization`, or
    both `used` and `equity` (ratio = used / equity)."""

    kind: Literal["margin"]
    url: HttpUrl | None = None
    headers: Headers = {}
    redis_key: Text | None = None
    used: Text | None = None
    equity: Text | None = None
    utilization: Text | None = None

    @model_validator(mode="after")
    def _one_source_one_formula(self) -> MarginConfig:
        if (self.url is None) == (self.redis_key is None):
            raise ValueError("set exactly one of 'url' (HTTP JSON) and 'redis_key' (a hash)")
        if self.headers and self.url is None:
            raise ValueError("'headers' apply only to 'url'")
        has_pair = self.used is not None and self.equity is not None
        has_any_part = self.used is not None or self.equity is not None
        if (self.utilization is not None) == has_any_part or (has_any_part and not has_pair):
            raise ValueError("set either 'utilization', or both 'used' and 'equity'")
        if self.direction != "above":
            raise ValueError("margin utilization gets worse as it grows: 'direction' is 'above'")
        if self.url is not None:
            for name in ("used", "equity", "utilization"):
                expression = getattr(self, name)
                if expression is not None:
                    try:
                        check_jmespath(expression)
                    except ValueError as exc:
                        raise ValueError(f"{name}: {exc}") from None
        return self


class Margin(Watchdog):
    config: MarginConfig

    def __init__(
        self, config: MarginConfig, http: httpx.AsyncClient | None, redis: Redis | None
    ) -> None:
        super().__init__(config)
        self.http = require_http(http) if config.url is not None else None
        self.redis = redis
        # name -> the jmespath (url) or hash field (redis_key) it is read from
        self.sources = {
            name: where for name in FIELDS if (where := getattr(config, name)) is not None
        }
        self._paths = {name: jmespath.compile(where) for name, where in self.sources.items()}

    @property
    def subjects(self) -> list[str]:
        return [SUBJECT]

    async def check(self, now: float, session_opened_at: float | None) -> list[Verdict]:
        try:
            fields = await self.read()
        except (SourceError, ValueError) as exc:
            return [self.unknown(str(exc))]
        return [self.judge(fields)]

    async def read(self) -> dict[str, object]:
        """The raw value of each configured field (None when absent)."""
        cfg = self.config
        if self.http is not None and cfg.url is not None:
            document = await fetch_json(self.http, cfg.url, cfg.headers, cfg.check_timeout_s)
            return self.fields_of(document)
        return await self._read_hash()

    def fields_of(self, document: object) -> dict[str, object]:
        """The raw value at each configured jmespath of a JSON answer (None when absent)."""
        return {name: search(path, document) for name, path in self._paths.items()}

    async def _read_hash(self) -> dict[str, object]:
        assert self.redis is not None and self.config.redis_key is not None
        key = self.config.redis_key
        [reply] = await batch(self.redis, [("HMGET", key, *self.sources.values())])
        if isinstance(reply, Exception):
            raise ValueError(f"redis error on {key!r}: {first_line(reply)}")
        if not isinstance(reply, list) or all(value is None for value in reply):
            raise ValueError(f"hash {key!r} is missing or has none of the fields")
        return dict(zip(self.sources, reply, strict=True))

    def judge(self, fields: dict[str, object]) -> Verdict:
        try:
            ratio, detail = self.ratio(fields)
        except ValueError as exc:
            return self.unknown(str(exc))
        return value_verdict(self.name, SUBJECT, ratio, self.config, "ratio", detail=detail)

    def ratio(self, fields: dict[str, object]) -> tuple[float, str]:
        """(ratio, detail for the reason); ValueError naming the field otherwise."""
        if "utilization" in self.sources:
            return self.number(fields, "utilization"), ""
        used, equity = self.number(fields, "used"), self.number(fields, "equity")
        amounts = f"used {money(used)} / equity {money(equity)}"
        if equity <= 0:
            raise ValueError(f"equity {money(equity)} <= 0: ratio undefined ({amounts})")
        if used < 0:
            raise ValueError(f"used {money(used)} < 0: not a margin figure ({amounts})")
        ratio = used / equity
        if not math.isfinite(ratio):
            raise ValueError(f"ratio out of range ({amounts})")
        return ratio, f" ({amounts})"

    def number(self, fields: dict[str, object], name: str) -> float:
        where = self.sources[name]
        raw = fields.get(name)
        if raw is None:
            source = "the answer" if self.config.url is not None else "the hash"
            raise ValueError(f"{name} missing: no {where!r} in {source}")
        try:
            return parse_number(raw)
        except (ValueError, OverflowError) as exc:
            raise ValueError(f"{name} {where!r}: {exc}") from None

    def unknown(self, problem: str) -> Verdict:
        return Verdict(self.name, SUBJECT, Status.UNKNOWN, f"{SUBJECT}: {problem}")


KIND = WatchdogKind(
    config=MarginConfig,
    build=lambda config, clients: Margin(config, clients.http, clients.redis),
    needs=frozenset({Need.HTTP, Need.REDIS}),
    gauge=KindGauge(
        "supervisor_margin_utilization_ratio",
        "Margin used / equity.",
        None,
        subject="utilization",
    ),
)

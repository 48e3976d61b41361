"""http_value: a number from a JSON answer, judged against thresholds in either direction.

The number is `path` (a jmespath) into the JSON answer of a GET on `url`. The subject is
`label`, or the path itself. `direction = "above"` (default): worse as the value grows,
`value > threshold` crosses it; `"below"`: worse as it falls, `value < threshold` crosses it.
Equal to a threshold never crosses it.

    [[watchdogs]]
    name = "allocator_free_margin"
    kind = "http_value"
    url = "http://127.0.0.1:8100/api/allocator/state"
    path = "free_margin_pct"
    direction = "below"
    warn = 40
    breach = 25

| what it gets | verdict |
|---|---|
| a number, or numeric text ("1234.5") | judged: OK / WARN / BREACH / CRITICAL |
| nothing at `path` (missing, null) | UNKNOWN "{subject}: no value at 'path'" |
| anything else (text, bool, list, NaN, infinity) | UNKNOWN, saying what it got |
| HTTP non-2xx, a body that is not JSON | UNKNOWN "{subject}: HTTP 503 from /path" |
| no answer (refused, timed out) | UNKNOWN "{subject}: http: ..." |

UNKNOWN, not BREACH, when the value cannot be read: this kind judges a number, and the
service being down is `http_health`'s job. With `fail_closed = true` a lasting UNKNOWN
counts as a BREACH after `unknown_grace`.
"""

from __future__ import annotations

from typing import Literal

import httpx
import jmespath
from pydantic import Field

from supervisor.config.types import Headers, HttpUrl, JmesPath, Text
from supervisor.config.watchdog_base import ValueThresholds, WatchdogBase
from supervisor.declarations import Need
from supervisor.errors import SourceError
from supervisor.model import Status, Verdict
from supervisor.values import parse_number
from supervisor.watchdogs.base import Watchdog, WatchdogKind
from supervisor.watchdogs.http_json import fetch_json, require_http, search
from supervisor.watchdogs.thresholds import value_verdict


class HttpValueConfig(WatchdogBase, ValueThresholds):
    kind: Literal["http_value"]
    url: HttpUrl
    headers: Headers = {}
    path: JmesPath  # where the number is in the JSON answer
    label: Text | None = Field(None, max_length=64)  # the subject; default: path
    unit: str = Field("", max_length=16)  # shown with the value ("s", "ratio", "orders"...)


class HttpValue(Watchdog):
    config: HttpValueConfig

    def __init__(self, config: HttpValueConfig, http: httpx.AsyncClient | None) -> None:
        super().__init__(config)
        self.http = require_http(http)
        self.subject = config.label or config.path
        self._path = jmespath.compile(config.path)

    @property
    def subjects(self) -> list[str]:
        return [self.subject]

    async def check(self, now: float, session_opened_at: float | None) -> list[Verdict]:
        cfg = self.config
        try:
            document = await fetch_json(self.http, cfg.url, cfg.headers, cfg.check_timeout_s)
        except (SourceError, ValueError) as exc:
            return [self.unknown(str(exc))]
        return [self.judge(document)]

    def judge(self, document: object) -> Verdict:
        raw = search(self._path, document)
        if raw is None:
            return self.unknown(f"no value at {self.config.path!r}")
        try:
            value = parse_number(raw)
        except (ValueError, OverflowError) as exc:
            return self.unknown(f"{self.config.path!r}: {exc}")
        return value_verdict(self.name, self.subject, value, self.config, self.config.unit)

    def unknown(self, problem: str) -> Verdict:
        return Verdict(self.name, self.subject, Status.UNKNOWN, f"{self.subject}: {problem}")


KIND = WatchdogKind(
    config=HttpValueConfig,
    build=lambda config, clients: HttpValue(config, clients.http),
    needs=frozenset({Need.HTTP}),
)

"""http_health: does a service's health endpoint answer, correctly and in time?

One subject: the URL's path (`/readyz`), never its host, query string or headers, which may
carry tokens. The endpoint is the thing being judged, so unlike every other kind, silence is
failure here: no answer at all is a BREACH, not UNKNOWN.

    [[watchdogs]]
    name = "engine_binance_ready"
    kind = "http_health"
    url = "http://127.0.0.1:8003/readyz"
    expect_status = [200]              # default
    max_latency = "250ms"
    expect = "ok == `true`"            # jmespath; must evaluate to boolean true
    trip_after = 3

| what it gets | verdict |
|---|---|
| expected status, expectation true, within `max_latency` | OK "/readyz: HTTP 200 in 12ms" |
| expected status but slower than `max_latency` | WARN "/readyz: slow: 380ms > 250ms (HTTP 200)" |
| another status (redirects are not followed) | BREACH "/readyz: HTTP 503, expected 200" |
| `expect` false, null or not a boolean | BREACH, saying what the expression gave |
| `expect` set and the body is not JSON | BREACH "/readyz: response is not JSON ..." |
| a body larger than 1 MiB | UNKNOWN "/readyz: http: response larger than 1 MiB" |
| refused, reset, no whole answer (body too) in time | BREACH "/readyz: no answer: ..." |

Slowness is a WARN, not a BREACH: an endpoint that answers "ready" slowly is degraded, not
down, and the measured latency includes this host's scheduling and a cold connection, so one
slow probe should never flatten a book. Route `on_warn` to a page if you care; a service so
slow that it does not answer within `timeout` is a BREACH anyway. The answer must arrive
within 90% of the check's `timeout`, leaving the rest to judge it, so that a hung endpoint is
judged BREACH here rather than cut off as UNKNOWN by the generic check timeout.

`expect` is strict: only boolean `true` passes, so `{"ok": "false"}` or a missing field
never reads as healthy. The verdict's value is the latency in seconds.
"""

from __future__ import annotations

import json
from typing import Annotated, Literal

import httpx
import jmespath
from pydantic import Field

from supervisor.config.types import Headers, HttpUrl, JmesPath, PositiveDuration
from supervisor.config.watchdog_base import AlertLevels, WatchdogBase
from supervisor.declarations import Need
from supervisor.errors import SourceError
from supervisor.model import Status, Verdict
from supervisor.quantities import format_duration
from supervisor.sources.http import HttpReply, TooLarge, get
from supervisor.watchdogs.base import Watchdog, WatchdogKind
from supervisor.watchdogs.http_json import require_http, search, url_path

ANSWER_SHARE_OF_TIMEOUT = 0.9


class HttpHealthConfig(WatchdogBase):
    kind: Literal["http_health"]
    url: HttpUrl
    headers: Headers = {}
    expect_status: list[Annotated[int, Field(ge=100, le=599)]] = Field([200], min_length=1)
    max_latency_s: PositiveDuration | None = Field(None, alias="max_latency")
    expect: JmesPath | None = None  # must evaluate to boolean true, e.g. "ok == `true`"

    def alert_levels(self, subject: str) -> AlertLevels:
        return AlertLevels(warn=self.max_latency_s)  # slower than it: WARN, never a trip


class HttpHealth(Watchdog):
    config: HttpHealthConfig

    def __init__(self, config: HttpHealthConfig, http: httpx.AsyncClient | None) -> None:
        super().__init__(config)
        self.http = require_http(http)
        self.subject = url_path(config.url)
        self._expect = jmespath.compile(config.expect) if config.expect else None

    @property
    def subjects(self) -> list[str]:
        return [self.subject]

    async def check(self, now: float, session_opened_at: float | None) -> list[Verdict]:
        budget = self.config.check_timeout_s * ANSWER_SHARE_OF_TIMEOUT
        try:
            reply = await get(self.http, self.config.url, self.config.headers, budget)
        except TooLarge as exc:  # an answer, but not one that can be judged
            return [self.verdict(Status.UNKNOWN, str(exc))]
        except SourceError as exc:  # no answer within the budget (all of it, body included)
            return [self.verdict(Status.BREACH, f"no answer: {exc}")]
        return [self.judge(reply)]

    def judge(self, reply: HttpReply) -> Verdict:
        status_line = f"HTTP {reply.status_code}"
        if reply.status_code not in self.config.expect_status:
            expected = ", ".join(str(code) for code in self.config.expect_status)
            return self.verdict(Status.BREACH, f"{status_line}, expected {expected}", reply)
        problem = self.expectation_problem(reply)
        if problem is not None:
            return self.verdict(Status.BREACH, problem, reply)
        took = format_duration(reply.latency_s)
        limit = self.config.max_latency_s
        if limit is not None and reply.latency_s > limit:
            reason = f"slow: {took} > {format_duration(limit)} ({status_line})"
            return self.verdict(Status.WARN, reason, reply)
        return self.verdict(Status.OK, f"{status_line} in {took}", reply)

    def expectation_problem(self, reply: HttpReply) -> str | None:
        """Why the body fails `expect`, or None when it holds (or there is none)."""
        if self._expect is None:
            return None
        try:
            document = reply.json()
        except ValueError as exc:
            return f"{exc}, expected {self.config.expect}"
        result = search(self._expect, document)
        if result is True:
            return None
        return f"expectation {self.config.expect} not met (got {shown(result)})"

    def verdict(self, status: Status, detail: str, reply: HttpReply | None = None) -> Verdict:
        latency = reply.latency_s if reply is not None else None
        # The latency budget is the threshold only of a verdict about latency.
        judged_on_latency = status in (Status.OK, Status.WARN)
        return Verdict(
            self.name,
            self.subject,
            status,
            f"{self.subject}: {detail}",
            value=latency,
            unit="s",
            threshold=self.config.max_latency_s if judged_on_latency else None,
        )


def shown(result: object) -> str:
    """A short rendering of an expression's result for a reason."""
    try:
        text = json.dumps(result, default=str)
    except (ValueError, RecursionError):
        return f"a {type(result).__name__}"
    return text if len(text) <= 60 else text[:57] + "..."


KIND = WatchdogKind(
    config=HttpHealthConfig,
    build=lambda config, clients: HttpHealth(config, clients.http),
    needs=frozenset({Need.HTTP}),
)

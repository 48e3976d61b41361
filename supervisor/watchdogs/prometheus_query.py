"""prometheus_query: an instant PromQL query, each series judged against thresholds.

GET `{url}/api/v1/query?query=...` (the Prometheus HTTP API), with `headers` (a token for a
protected Prometheus or a Mimir/Thanos gateway). A `vector` answer gives one verdict per
series, its subject the series' labels rendered `{venue="binance"}` (the query text when the
series has no labels, as after `sum(...)`); a `scalar` answer gives one verdict, subject the
query text. `direction` as in http_value; `unit` is only for display.

    [[watchdogs]]
    name = "binance_ticks_flowing"
    kind = "prometheus_query"
    url = "http://127.0.0.1:9090"
    query = 'rate(strategy_ticks_total{venue="binance"}[1m])'
    direction = "below"   # worse as it falls: `value < breach` crosses
    breach = 0.01         # one tick in the last minute is a rate of 1/60 = 0.017: 0.01 is "none"
    unit = "ticks/s"
    fail_closed = true    # no series for longer than unknown_grace: BREACH

    [[watchdogs]]
    name = "tick_to_order_p95"
    kind = "prometheus_query"
    query = "histogram_quantile(0.95, rate(strategy_tick_to_order_latency_ms_bucket[5m])) / 1000"
    unit = "s"
    warn = 0.1
    breach = 0.15

| what Prometheus answers | verdict |
|---|---|
| a vector: per series a number | judged per series |
| a scalar | judged, subject the query |
| an empty vector | UNKNOWN "no data (query returned no series)" |
| a sample "NaN", "+Inf", "-Inf" | UNKNOWN for that series |
| `status: "error"` (bad query, timeout, ...) | UNKNOWN "prometheus error bad_data: ..." |
| HTTP 4xx/5xx without an error body, not JSON | UNKNOWN "HTTP 503 from /api/v1/query" |
| matrix or string results | UNKNOWN: use an instant vector or scalar query |
| no answer (Prometheus down, timed out) | UNKNOWN "http: ..." |

Why an empty vector is UNKNOWN and not OK: PromQL drops series that do not exist, so
`rate(strategy_ticks_total{venue="binance"}[1m])` returns nothing when the engine, its
exporter or the scrape is gone: exactly the outage the check exists for. "No series" is not
evidence of health, nor a measured breach; it is not being able to see. With
`fail_closed = true` it counts as a BREACH after `unknown_grace`. A query where absence
means zero can say so: `sum(rate(x[1m])) or vector(0)`. NaN (a quantile or ratio over no
samples) is UNKNOWN for the same reason.

When the whole answer is unusable, the UNKNOWN verdicts go to the series of the last good
answer (the query text before there was one), so their published values turn to "unknown"
instead of freezing at the last number. A series that disappears from an otherwise good
answer stops being judged; to guard one series, name it in the query.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlencode

import httpx
from pydantic import Field

from supervisor.config.types import Headers, HttpUrl, Query
from supervisor.config.watchdog_base import ValueThresholds, WatchdogBase
from supervisor.declarations import Need
from supervisor.errors import SourceError
from supervisor.model import Status, Verdict
from supervisor.sources.http import HttpReply, get
from supervisor.values import parse_number
from supervisor.watchdogs.base import Watchdog, WatchdogKind
from supervisor.watchdogs.http_json import is_success, require_http
from supervisor.watchdogs.thresholds import value_verdict

API_PATH = "/api/v1/query"
NO_DATA = "no data (query returned no series)"
MAX_ERROR_TEXT = 200


def render_labels(labels: dict[str, object]) -> str:
    """Prometheus' own rendering: `{k="v",...}`, sorted, quotes and backslashes escaped."""
    pairs = (
        f'{name}="{str(value).replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
        for name, value in sorted(labels.items())
    )
    return "{" + ",".join(pairs) + "}"


def parse_answer(reply: HttpReply, query: str) -> list[tuple[str, object]]:
    """(subject, raw sample value) per series of a Prometheus query answer.

    ValueError with the reason for anything that is not a usable answer. Pure: this is what
    the property tests feed arbitrary bytes.
    """
    return samples(envelope(reply), query)


def envelope(reply: HttpReply) -> dict[str, object]:
    """The `data` object of a successful answer; ValueError saying what went wrong."""
    try:
        document = reply.json()
    except ValueError as exc:
        raise ValueError(
            f"HTTP {reply.status_code} from {API_PATH}" if not is_success(reply) else str(exc)
        ) from None
    if not isinstance(document, dict):
        raise ValueError("not a Prometheus API answer (not a JSON object)")
    if document.get("status") == "error":
        kind = str(document.get("errorType", "unknown"))[:40]
        text = str(document.get("error", ""))[:MAX_ERROR_TEXT]
        raise ValueError(f"prometheus error {kind}: {text}")
    if not is_success(reply):
        raise ValueError(f"HTTP {reply.status_code} from {API_PATH}")
    data = document.get("data")
    if document.get("status") != "success" or not isinstance(data, dict):
        raise ValueError("not a Prometheus API answer (no status 'success' with data)")
    return data


def samples(data: dict[str, object], query: str) -> list[tuple[str, object]]:
    kind, result = data.get("resultType"), data.get("result")
    if kind == "scalar":
        return [(query, sample_of(result))]
    if kind != "vector":
        raise ValueError(
            f"unsupported resultType {str(kind)[:20]!r}: use an instant vector or scalar query"
        )
    if not isinstance(result, list):
        raise ValueError("malformed vector answer (result is not a list)")
    if not result:
        raise ValueError(NO_DATA)
    return [series(item, query) for item in result]


def series(item: object, query: str) -> tuple[str, object]:
    if not isinstance(item, dict) or not isinstance(item.get("metric", {}), dict):
        raise ValueError("malformed vector answer (a series is not an object with labels)")
    labels = item.get("metric") or {}
    return (render_labels(labels) if labels else query, sample_of(item.get("value")))


def sample_of(pair: object) -> object:
    """The value of a `[timestamp, "value"]` sample."""
    if not isinstance(pair, list) or len(pair) != 2:
        raise ValueError("malformed sample (not [timestamp, value])")
    return pair[1]


def sample_value(raw: object) -> float:
    """A finite float from a sample's text; ValueError naming NaN and infinities plainly."""
    if isinstance(raw, str) and raw.strip().lower().lstrip("+-") in ("nan", "inf"):
        raise ValueError(
            f"value {raw.strip()} is not a finite number (no samples to compute from?)"
        )
    return parse_number(raw)


class PrometheusQueryConfig(WatchdogBase, ValueThresholds):
    kind: Literal["prometheus_query"]
    url: HttpUrl = "http://127.0.0.1:9090"  # Prometheus base URL
    query: Query  # an instant query: a vector (one verdict per series)
    headers: Headers = {}
    unit: str = Field("", max_length=16)  # shown with the value ("s", "ratio", "ticks/s"...)


class PrometheusQuery(Watchdog):
    config: PrometheusQueryConfig

    def __init__(self, config: PrometheusQueryConfig, http: httpx.AsyncClient | None) -> None:
        super().__init__(config)
        self.http = require_http(http)
        self.endpoint = f"{config.url.rstrip('/')}{API_PATH}?{urlencode({'query': config.query})}"
        self._last_subjects: list[str] = []

    @property
    def subjects(self) -> list[str]:
        return list(self._last_subjects) or [self.config.query]

    async def check(self, now: float, session_opened_at: float | None) -> list[Verdict]:
        cfg = self.config
        try:
            reply = await get(self.http, self.endpoint, cfg.headers, cfg.check_timeout_s)
        except SourceError as exc:
            return self.all_unknown(str(exc))
        return self.judge(reply)

    def judge(self, reply: HttpReply) -> list[Verdict]:
        try:
            found = parse_answer(reply, self.config.query)
        except ValueError as exc:
            return self.all_unknown(str(exc))
        verdicts = [self.judge_sample(subject, raw) for subject, raw in found]
        self._last_subjects = [v.subject for v in verdicts]
        return verdicts

    def judge_sample(self, subject: str, raw: object) -> Verdict:
        try:
            value = sample_value(raw)
        except (ValueError, OverflowError) as exc:
            return self.unknown(subject, str(exc))
        return value_verdict(self.name, subject, value, self.config, self.config.unit)

    def all_unknown(self, problem: str) -> list[Verdict]:
        return [self.unknown(subject, problem) for subject in self.subjects]

    def unknown(self, subject: str, problem: str) -> Verdict:
        return Verdict(self.name, subject, Status.UNKNOWN, f"{subject}: {problem}")


KIND = WatchdogKind(
    config=PrometheusQueryConfig,
    build=lambda config, clients: PrometheusQuery(config, clients.http),
    needs=frozenset({Need.HTTP}),
)

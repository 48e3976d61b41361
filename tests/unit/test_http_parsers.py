"""Property tests: whatever an HTTP source answers, the HTTP kinds return verdicts, never raise.

The pure halves of the four HTTP kinds (everything after the bytes arrive) are fed arbitrary
bytes, arbitrary JSON, and answers shaped like the real thing with arbitrary leaves.
"""

from __future__ import annotations

import json
import math
from typing import Any

import httpx
from hypothesis import given, settings
from hypothesis import strategies as st

from supervisor.model import Status, Verdict
from supervisor.sources.http import HttpReply
from supervisor.watchdogs.http_health import HttpHealth, HttpHealthConfig
from supervisor.watchdogs.http_json import document_of
from supervisor.watchdogs.http_value import HttpValue, HttpValueConfig
from supervisor.watchdogs.margin import Margin, MarginConfig
from supervisor.watchdogs.prometheus_query import PrometheusQuery, PrometheusQueryConfig

URL = "http://127.0.0.1:1/api"
CLIENT = httpx.AsyncClient()  # never used for I/O here: the judging half is pure

MARGIN = Margin(
    MarginConfig.model_validate(
        {
            "name": "m",
            "kind": "margin",
            "url": URL,
            "used": "account.marginUsed",
            "equity": "account.NAV",
            "warn": 0.25,
            "breach": 0.3,
        }
    ),
    CLIENT,
    None,
)
MARGIN_HASH = Margin(
    MarginConfig.model_validate(
        {"name": "m", "kind": "margin", "redis_key": "k", "used": "u", "equity": "e", "breach": 0.3}
    ),
    None,
    None,
)
HEALTH = HttpHealth(
    HttpHealthConfig.model_validate(
        {
            "name": "h",
            "kind": "http_health",
            "url": URL,
            "expect": "ok == `true`",
            "max_latency": "100ms",
        }
    ),
    CLIENT,
)
VALUE = HttpValue(
    HttpValueConfig.model_validate(
        {"name": "v", "kind": "http_value", "url": URL, "path": "a.b[0]", "breach": 5}
    ),
    CLIENT,
)


def prometheus() -> PrometheusQuery:
    config = {"name": "p", "kind": "prometheus_query", "query": "up", "breach": 1}
    return PrometheusQuery(PrometheusQueryConfig.model_validate(config), CLIENT)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from(["NaN", "+Inf", "-Inf", "1e999", "0", "-0", " 12.5 ", "0x10"]),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
statuses = st.integers(min_value=100, max_value=599)
latencies = st.floats(min_value=0, max_value=10)


def as_bytes(document: Any) -> bytes:
    return json.dumps(document, allow_nan=True).encode()


def check_verdict(verdict: Verdict, subject: str | None = None) -> None:
    assert isinstance(verdict.status, Status)
    if subject is not None:
        assert verdict.subject == subject
    assert verdict.reason.startswith(verdict.subject)
    if verdict.status is not Status.UNKNOWN and verdict.value is not None:
        assert math.isfinite(verdict.value)


def check_read_before_judged(verdict: Verdict) -> None:
    """A value kind judges only what it read: no number, UNKNOWN (never a BREACH)."""
    check_verdict(verdict)
    assert verdict.status is Status.UNKNOWN or verdict.value is not None


def judge_margin(reply: HttpReply) -> None:
    try:
        document = document_of(reply, URL)
    except ValueError:
        return
    verdict = MARGIN.judge(MARGIN.fields_of(document))
    check_verdict(verdict, "utilization")
    check_read_before_judged(verdict)


def judge_value(reply: HttpReply) -> None:
    try:
        document = document_of(reply, URL)
    except ValueError:
        return
    verdict = VALUE.judge(document)
    check_verdict(verdict, "a.b[0]")
    check_read_before_judged(verdict)


def judge_everything(reply: HttpReply) -> None:
    judge_margin(reply)
    judge_value(reply)
    check_verdict(HEALTH.judge(reply), "/api")
    verdicts = prometheus().judge(reply)
    assert verdicts
    for verdict in verdicts:
        check_read_before_judged(verdict)
        if verdict.status is not Status.UNKNOWN:  # only a successful answer is judged
            assert 200 <= reply.status_code < 300
            assert json.loads(reply.body)["status"] == "success"


@settings(max_examples=300, deadline=None)
@given(statuses, latencies, st.binary(max_size=300))
def test_arbitrary_bytes(status: int, latency: float, body: bytes) -> None:
    judge_everything(HttpReply(status, latency, body))


@settings(max_examples=300, deadline=None)
@given(statuses, latencies, json_values)
def test_arbitrary_json(status: int, latency: float, document: Any) -> None:
    judge_everything(HttpReply(status, latency, as_bytes(document)))


@settings(max_examples=300, deadline=None)
@given(json_values, json_values, json_values)
def test_account_shaped_answers(used: Any, nav: Any, extra: Any) -> None:
    document = {"account": {"marginUsed": used, "NAV": nav, "x": extra}, "ok": used}
    judge_everything(HttpReply(200, 0.01, as_bytes(document)))
    judge_everything(HttpReply(200, 0.01, as_bytes({"a": {"b": [nav, used]}})))


prometheus_answers = st.fixed_dictionaries(
    {
        "status": st.sampled_from(["success", "error"]) | json_values,
        "errorType": json_values,
        "error": json_values,
        "data": st.fixed_dictionaries(
            {
                "resultType": st.sampled_from(["vector", "scalar", "matrix", "string"]),
                "result": json_values
                | st.lists(
                    st.fixed_dictionaries(
                        {
                            "metric": st.dictionaries(st.text(max_size=5), json_values, max_size=3)
                            | json_values,
                            "value": st.tuples(st.floats(), json_values).map(list) | json_values,
                        }
                    ),
                    max_size=4,
                ),
            }
        )
        | json_values,
    }
)


@settings(max_examples=500, deadline=None)
@given(statuses, prometheus_answers)
def test_prometheus_shaped_answers(status: int, answer: dict[str, Any]) -> None:
    watchdog = prometheus()
    for verdict in watchdog.judge(HttpReply(status, 0.01, as_bytes(answer))):
        check_read_before_judged(verdict)
        if verdict.status is not Status.UNKNOWN:  # a well-formed success, and nothing else
            assert 200 <= status < 300 and answer["status"] == "success"
            assert answer["data"]["resultType"] in ("vector", "scalar")


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.none(), st.binary(max_size=40)), st.one_of(st.none(), st.binary(max_size=40)))
def test_margin_hash_fields(used: bytes | None, equity: bytes | None) -> None:
    verdict = MARGIN_HASH.judge({"used": used, "equity": equity})
    check_verdict(verdict, "utilization")
    check_read_before_judged(verdict)
    if verdict.status is not Status.UNKNOWN:
        assert verdict.value is not None and verdict.value >= 0

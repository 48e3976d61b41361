"""prometheus_query against a real HTTP server speaking the Prometheus HTTP API."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from supervisor.model import Status, Verdict
from supervisor.watchdogs.base import evaluate
from supervisor.watchdogs.prometheus_query import (
    NO_DATA,
    PrometheusQuery,
    PrometheusQueryConfig,
    render_labels,
)
from testbed.http_server import HttpServer
from testbed.waiting import free_port

pytestmark = pytest.mark.anyio

API = "/api/v1/query"
RATE = "rate(strategy_ticks_total[1m])"
P95 = "histogram_quantile(0.95, rate(strategy_tick_to_order_latency_ms_bucket[5m])) / 1000"


def prom(url: str, client: httpx.AsyncClient, **overrides: Any) -> PrometheusQuery:
    fields: dict[str, Any] = {
        "name": "ticks_flowing",
        "kind": "prometheus_query",
        "url": url,
        "query": RATE,
        "direction": "below",
        "breach": 0.01,
        "unit": "ticks/s",
        "headers": {"Authorization": "Bearer prom-token"},
        "timeout": "1s",
    }
    return PrometheusQuery(PrometheusQueryConfig.model_validate({**fields, **overrides}), client)


def vector(*series: tuple[dict[str, str], str]) -> dict[str, Any]:
    result = [{"metric": labels, "value": [1795003200.123, value]} for labels, value in series]
    return {"status": "success", "data": {"resultType": "vector", "result": result}}


def scalar(value: str) -> dict[str, Any]:
    return {"status": "success", "data": {"resultType": "scalar", "result": [1795003200, value]}}


async def run(watchdog: PrometheusQuery) -> dict[str, Verdict]:
    verdicts = await evaluate(watchdog, None, time.time())
    for verdict in verdicts:
        assert verdict.reason.startswith(verdict.subject)
        assert "prom-token" not in verdict.reason
    return {v.subject: v for v in verdicts}


async def test_one_verdict_per_series_and_the_query_sent(
    http_server: HttpServer, http_client: httpx.AsyncClient
) -> None:
    http_server.answer_json(
        API,
        vector(({"venue": "binance", "job": "engine"}, "3.5"), ({"venue": "kraken"}, "0")),
    )
    verdicts = await run(prom(http_server.url(), http_client))
    binance, kraken = '{job="engine",venue="binance"}', '{venue="kraken"}'
    assert set(verdicts) == {binance, kraken}
    assert verdicts[binance].status is Status.OK
    assert verdicts[binance].value == 3.5
    assert verdicts[kraken].status is Status.BREACH
    assert verdicts[kraken].reason == '{venue="kraken"} 0 ticks/s < 0.01 ticks/s'
    [seen] = http_server.seen(API)
    assert seen.query == {"query": [RATE]}
    assert seen.headers["Authorization"] == "Bearer prom-token"


@pytest.mark.parametrize(
    ("seconds", "status"),
    [
        ("0.05", Status.OK),
        ("0.12", Status.WARN),
        ("0.151", Status.BREACH),
        ("0.9", Status.CRITICAL),
    ],
)
async def test_p95_latency_each_status(
    http_server: HttpServer, http_client: httpx.AsyncClient, seconds: str, status: Status
) -> None:
    http_server.answer_json(API, vector(({}, seconds)))
    overrides = {"query": P95, "direction": "above", "warn": 0.1, "breach": 0.15, "critical": 0.5}
    watchdog = prom(http_server.url("/"), http_client, **overrides, unit="s")  # trailing slash
    verdict = (await run(watchdog))[P95]  # no labels: the subject is the query
    assert verdict.status is status
    assert verdict.unit == "s"
    if status is Status.BREACH:
        assert verdict.reason == f"{P95} 151ms > 150ms"


async def test_scalar(http_server: HttpServer, http_client: httpx.AsyncClient) -> None:
    http_server.answer_json(API, scalar("0.004"))
    verdicts = await run(prom(http_server.url(), http_client, query="scalar(sum(up))"))
    assert verdicts["scalar(sum(up))"].status is Status.BREACH


async def test_empty_vector_is_unknown_no_data(
    http_server: HttpServer, http_client: httpx.AsyncClient
) -> None:
    http_server.answer_json(API, vector())
    verdicts = await run(prom(http_server.url(), http_client))
    assert verdicts[RATE].status is Status.UNKNOWN
    assert verdicts[RATE].reason == f"{RATE}: {NO_DATA}"


@pytest.mark.parametrize("value", ["NaN", "+Inf", "-Inf"])
async def test_nan_and_infinities_are_unknown(
    http_server: HttpServer, http_client: httpx.AsyncClient, value: str
) -> None:
    http_server.answer_json(API, vector(({"venue": "binance"}, value), ({"venue": "x"}, "1")))
    verdicts = await run(prom(http_server.url(), http_client))
    verdict = verdicts['{venue="binance"}']
    assert verdict.status is Status.UNKNOWN
    assert verdict.reason == f'{{venue="binance"}}: value {value} is not a finite number' + (
        " (no samples to compute from?)"
    )
    assert verdicts['{venue="x"}'].status is Status.OK


async def test_prometheus_error_answer_is_unknown_with_its_type(
    http_server: HttpServer, http_client: httpx.AsyncClient
) -> None:
    error = {"status": "error", "errorType": "bad_data", "error": "1:6: parse error: unexpected"}
    http_server.answer_json(API, error, status=400)
    verdicts = await run(prom(http_server.url(), http_client, query="rate(x[1m]"))
    assert verdicts["rate(x[1m]"].status is Status.UNKNOWN
    assert verdicts["rate(x[1m]"].reason == (
        "rate(x[1m]: prometheus error bad_data: 1:6: parse error: unexpected"
    )


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (503, b"Service Unavailable", "HTTP 503 from /api/v1/query"),
        (401, b'{"message": "unauthorized"}', "HTTP 401 from /api/v1/query"),
        (200, b"<html></html>", "response is not JSON (HTTP 200)"),
        (
            200,
            b'{"status": "success"}',
            "not a Prometheus API answer (no status 'success' with data)",
        ),
    ],
)
async def test_http_errors_are_unknown(
    http_server: HttpServer, http_client: httpx.AsyncClient, status: int, body: bytes, reason: str
) -> None:
    http_server.answer_raw(API, body, status=status)
    verdicts = await run(prom(http_server.url(), http_client))
    assert (verdicts[RATE].status, verdicts[RATE].reason) == (Status.UNKNOWN, f"{RATE}: {reason}")


async def test_matrix_is_refused(http_server: HttpServer, http_client: httpx.AsyncClient) -> None:
    answer = {"status": "success", "data": {"resultType": "matrix", "result": []}}
    http_server.answer_json(API, answer)
    verdicts = await run(prom(http_server.url(), http_client))
    assert verdicts[RATE].status is Status.UNKNOWN
    assert "unsupported resultType 'matrix'" in verdicts[RATE].reason


async def test_failure_after_a_good_answer_marks_the_known_series_unknown(
    http_server: HttpServer, http_client: httpx.AsyncClient
) -> None:
    http_server.answer_json(API, vector(({"venue": "binance"}, "2"), ({"venue": "kraken"}, "1")))
    watchdog = prom(http_server.url(), http_client)
    assert {v.status for v in (await run(watchdog)).values()} == {Status.OK}
    http_server.answer_json(API, vector())
    verdicts = await run(watchdog)
    assert set(verdicts) == {'{venue="binance"}', '{venue="kraken"}'}
    assert {v.status for v in verdicts.values()} == {Status.UNKNOWN}
    assert verdicts['{venue="kraken"}'].reason == f'{{venue="kraken"}}: {NO_DATA}'


async def test_prometheus_down_is_unknown(http_client: httpx.AsyncClient) -> None:
    verdicts = await run(prom(f"http://127.0.0.1:{free_port()}", http_client))
    assert verdicts[RATE].status is Status.UNKNOWN
    assert verdicts[RATE].reason.startswith(f"{RATE}: http: ConnectError")


def test_label_rendering_escapes_like_prometheus() -> None:
    assert render_labels({"b": 'say "hi"', "a": "C:\\x"}) == '{a="C:\\\\x",b="say \\"hi\\""}'

"""http_health against a real HTTP server: status, latency, expectation, silence."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from supervisor.kinds import watchdog_kind
from supervisor.model import Status, Verdict
from supervisor.sources.clients import Clients
from supervisor.watchdogs.base import evaluate
from supervisor.watchdogs.http_health import HttpHealth, HttpHealthConfig
from testbed.http_server import Answer, HttpServer
from testbed.waiting import free_port

pytestmark = pytest.mark.anyio

TOKEN = "hunter2-health-token"


def health(url: str, client: httpx.AsyncClient, **overrides: Any) -> HttpHealth:
    fields: dict[str, Any] = {
        "name": "engine_ready",
        "kind": "http_health",
        "url": url,
        "headers": {"X-Api-Key": TOKEN},
        "timeout": "1s",
    }
    return HttpHealth(HttpHealthConfig.model_validate({**fields, **overrides}), client)


async def one(watchdog: HttpHealth) -> Verdict:
    [verdict] = await evaluate(watchdog, None, time.time())
    assert TOKEN not in verdict.reason
    assert verdict.reason.startswith(f"{verdict.subject}: ")
    return verdict


async def test_ok_with_expectation_and_headers_sent(
    http_server: HttpServer, http_client: httpx.AsyncClient
) -> None:
    http_server.answer_json("/readyz", {"ok": True})
    watchdog = health(http_server.url("/readyz"), http_client, expect="ok == `true`")
    verdict = await one(watchdog)
    assert verdict.status is Status.OK
    assert verdict.subject == "/readyz"
    assert verdict.reason.startswith("/readyz: HTTP 200 in ")
    assert verdict.unit == "s" and verdict.value is not None and verdict.value < 1
    assert http_server.seen("/readyz")[0].headers["X-Api-Key"] == TOKEN


async def test_subject_is_the_path_without_query_string(
    http_server: HttpServer, http_client: httpx.AsyncClient
) -> None:
    http_server.answer_raw("/health", b"fine")
    verdict = await one(health(http_server.url("/health?token=abc123"), http_client))
    assert verdict.status is Status.OK  # no `expect`: any body will do
    assert verdict.subject == "/health"
    assert "abc123" not in verdict.reason


@pytest.mark.parametrize(
    ("status", "expected", "verdict_status"),
    [(503, [200], Status.BREACH), (204, [200, 204], Status.OK), (302, [200], Status.BREACH)],
)
async def test_status_code(
    http_server: HttpServer,
    http_client: httpx.AsyncClient,
    status: int,
    expected: list[int],
    verdict_status: Status,
) -> None:
    http_server.answer("/health", Answer(status, b"", {"Location": "/elsewhere"}))
    watchdog = health(http_server.url("/health"), http_client, expect_status=expected)
    verdict = await one(watchdog)
    assert verdict.status is verdict_status
    if verdict_status is Status.BREACH:
        assert verdict.reason == f"/health: HTTP {status}, expected 200"


async def test_slow_answer_is_a_warning(
    http_server: HttpServer, http_client: httpx.AsyncClient
) -> None:
    http_server.answer_json("/readyz", {"ok": True}, delay_s=0.3)
    watchdog = health(http_server.url("/readyz"), http_client, max_latency="100ms")
    verdict = await one(watchdog)
    assert verdict.status is Status.WARN
    assert verdict.reason.startswith("/readyz: slow: ")
    assert verdict.reason.endswith(" > 100ms (HTTP 200)")
    assert verdict.threshold == pytest.approx(0.1)


@pytest.mark.parametrize(
    ("document", "got"),
    [
        ({"ok": False}, "false"),
        ({"ok": "true"}, '"true"'),  # a string is not a boolean: strict
        ({"status": "up"}, "null"),
        ([1, 2], "null"),
    ],
)
async def test_expectation_not_met_is_a_breach(
    http_server: HttpServer, http_client: httpx.AsyncClient, document: object, got: str
) -> None:
    http_server.answer_json("/health", document)
    watchdog = health(http_server.url("/health"), http_client, expect="ok == `true` || ok")
    verdict = await one(watchdog)
    assert verdict.status is Status.BREACH
    assert verdict.reason == f"/health: expectation ok == `true` || ok not met (got {got})"


async def test_non_json_body_with_an_expectation_is_a_breach(
    http_server: HttpServer, http_client: httpx.AsyncClient
) -> None:
    http_server.answer_raw("/health", b"OK")
    watchdog = health(http_server.url("/health"), http_client, expect="ok == `true`")
    verdict = await one(watchdog)
    assert verdict.status is Status.BREACH
    assert verdict.reason == "/health: response is not JSON (HTTP 200), expected ok == `true`"


async def test_connection_refused_is_a_breach_not_unknown(http_client: httpx.AsyncClient) -> None:
    verdict = await one(health(f"http://127.0.0.1:{free_port()}/readyz", http_client))
    assert verdict.status is Status.BREACH
    assert verdict.reason.startswith("/readyz: no answer: http: ConnectError")
    assert verdict.value is None


async def test_hung_endpoint_is_a_breach_within_the_timeout(
    http_server: HttpServer, http_client: httpx.AsyncClient
) -> None:
    http_server.answer_json("/readyz", {"ok": True}, delay_s=5)
    watchdog = health(http_server.url("/readyz"), http_client, timeout="500ms")
    started = time.monotonic()
    verdict = await one(watchdog)
    assert time.monotonic() - started < 3  # cut off, not the 5 s answer
    assert verdict.status is Status.BREACH
    assert "no answer" in verdict.reason and "450ms" in verdict.reason


async def test_registered(http_server: HttpServer, http_client: httpx.AsyncClient) -> None:
    from redis.asyncio import Redis

    http_server.answer_json("/readyz", {"ok": True})
    cfg = HttpHealthConfig.model_validate(
        {"name": "h", "kind": "http_health", "url": http_server.url("/readyz")}
    )
    redis = Redis.from_url("redis://127.0.0.1:1/0")  # never used by this kind
    watchdog = watchdog_kind("http_health").build(cfg, Clients(redis, http_client))
    [verdict] = await evaluate(watchdog, None, time.time())
    assert verdict.status is Status.OK
    await redis.aclose()


async def test_threshold_is_the_latency_budget_only_for_latency_verdicts(
    http_server: HttpServer, http_client: httpx.AsyncClient
) -> None:
    http_server.answer_json("/readyz", {"ok": True}, status=500)
    watchdog = health(http_server.url("/readyz"), http_client, max_latency="250ms")
    verdict = await one(watchdog)
    assert (verdict.status, verdict.threshold) == (Status.BREACH, None)
    http_server.answer_json("/readyz", {"ok": True})
    verdict = await one(watchdog)
    assert (verdict.status, verdict.threshold) == (Status.OK, 0.25)

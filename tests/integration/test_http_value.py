"""http_value against a real HTTP server: both directions, each status, unusable answers."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from supervisor.model import Status, Verdict
from supervisor.watchdogs.base import evaluate
from supervisor.watchdogs.http_value import HttpValue, HttpValueConfig
from testbed.http_server import HttpServer
from testbed.waiting import free_port

pytestmark = pytest.mark.anyio

PATH = "/api/allocator/state"


def value_watchdog(url: str, client: httpx.AsyncClient, **overrides: Any) -> HttpValue:
    fields: dict[str, Any] = {
        "name": "queue_depth",
        "kind": "http_value",
        "url": url,
        "path": "queue.depth",
        "warn": 10,
        "breach": 50,
        "critical": 200,
        "timeout": "1s",
    }
    return HttpValue(HttpValueConfig.model_validate({**fields, **overrides}), client)


async def one(server: HttpServer, client: httpx.AsyncClient, **overrides: Any) -> Verdict:
    [verdict] = await evaluate(value_watchdog(server.url(PATH), client, **overrides), None, 0.0)
    return verdict


@pytest.mark.parametrize(
    ("depth", "status"),
    [
        (3, Status.OK),
        (10, Status.OK),
        (11, Status.WARN),
        ("51", Status.BREACH),
        (201.5, Status.CRITICAL),
    ],
)
async def test_above_each_status(
    http_server: HttpServer, http_client: httpx.AsyncClient, depth: object, status: Status
) -> None:
    http_server.answer_json(PATH, {"queue": {"depth": depth}})
    verdict = await one(http_server, http_client)
    assert verdict.status is status
    assert verdict.subject == "queue.depth"
    assert verdict.value == float(str(depth))


async def test_below_direction_reason_and_label(
    http_server: HttpServer, http_client: httpx.AsyncClient
) -> None:
    http_server.answer_json(PATH, {"free_margin_pct": "22.5"})
    overrides = {"path": "free_margin_pct", "direction": "below", "warn": 40, "breach": 25}
    verdict = await one(http_server, http_client, **overrides, critical=None, label="free margin")
    assert verdict.status is Status.BREACH
    assert verdict.reason == "free margin 22.5 < 25"
    assert verdict.threshold == 25
    http_server.answer_json(PATH, {"free_margin_pct": 60})
    verdict = await one(http_server, http_client, **overrides, critical=None, unit="%")
    assert verdict.status is Status.OK
    assert verdict.reason == "free_margin_pct 60 %"


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ({"queue": {}}, "queue.depth: no value at 'queue.depth'"),
        ({"queue": {"depth": None}}, "queue.depth: no value at 'queue.depth'"),
        ({"queue": {"depth": "many"}}, "queue.depth: 'queue.depth': not a number: 'many'"),
        ({"queue": {"depth": False}}, "queue.depth: 'queue.depth': not a number: False"),
        ({"queue": {"depth": [1]}}, "queue.depth: 'queue.depth': not a number: a list"),
        ("just text", "queue.depth: no value at 'queue.depth'"),
    ],
)
async def test_missing_or_non_numeric_is_unknown(
    http_server: HttpServer, http_client: httpx.AsyncClient, document: object, reason: str
) -> None:
    http_server.answer_json(PATH, document)
    verdict = await one(http_server, http_client)
    assert (verdict.status, verdict.reason) == (Status.UNKNOWN, reason)


async def test_http_error_non_json_and_down_are_unknown(
    http_server: HttpServer, http_client: httpx.AsyncClient
) -> None:
    http_server.answer_json(PATH, {"queue": {"depth": 1}}, status=500)
    verdict = await one(http_server, http_client)
    assert (verdict.status, verdict.reason) == (
        Status.UNKNOWN,
        f"queue.depth: HTTP 500 from {PATH}",
    )
    http_server.answer_raw(PATH, b"\xff\xfe")
    verdict = await one(http_server, http_client)
    assert verdict.reason == "queue.depth: response is not JSON (HTTP 200)"
    down = value_watchdog(f"http://127.0.0.1:{free_port()}{PATH}", http_client)
    [verdict] = await evaluate(down, None, time.time())
    assert verdict.status is Status.UNKNOWN
    assert verdict.reason.startswith("queue.depth: http: ConnectError")

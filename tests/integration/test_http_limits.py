"""Every HTTP call is bounded in size and in total time, against a hostile server on 127.0.0.1
(testbed/hostile_http.py): bodies of 64 MiB, bodies and headers dripped a byte every 0.3 s.

httpx's `timeout` bounds each read, and a byte every 0.3 s never trips a 1 s read timeout: before
the total deadline, a dripping server kept a call alive for as long as it dripped (here: until
the server's own bounded loop ended, long after the timeout). Elapsed times are compared with
a multiple of the timeout, not a tight bound: this machine is shared.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from supervisor.actuators.base import ActionContext
from supervisor.actuators.deadman import Deadman, DeadmanConfig
from supervisor.actuators.http import HttpActuator, HttpActuatorConfig
from supervisor.errors import ActuatorError, SourceError
from supervisor.model import Decision, Status
from supervisor.sources import http as http_source
from supervisor.sources.http import TooLarge
from supervisor.watchdogs.base import evaluate
from supervisor.watchdogs.http_health import HttpHealth, HttpHealthConfig
from supervisor.watchdogs.http_value import HttpValue, HttpValueConfig
from supervisor.watchdogs.prometheus_query import PrometheusQuery, PrometheusQueryConfig
from testbed.hostile_http import Behaviour, HostileHttpServer, Mode

pytestmark = pytest.mark.anyio

TIMEOUT_S = 1.0
MiB = 1 << 20
HUGE = 64 * MiB


def drip(mode: Mode) -> Behaviour:
    """A byte every 0.3 s, 40 of them: 12 s to finish, far past the timeout, then it stops."""
    return Behaviour(mode, size=40, interval_s=0.3)


DECISION = Decision("w", Status.CRITICAL, ("kill_api",), "test", "inc-1", 1000.0)
ACTION_CONTEXT = ActionContext(instance_id="sup-a", now=1000.5)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with http_source.client() as shared:
        yield shared


def stopwatch() -> float:
    return time.monotonic()


# --- the source every watchdog and verify reads through ------------------------------------


@pytest.mark.parametrize("declare_length", [True, False])
async def test_a_huge_body_is_refused_quickly_without_reading_it_all(
    client: httpx.AsyncClient, declare_length: bool
) -> None:
    with HostileHttpServer(Behaviour("huge", HUGE, declare_length)) as server:
        started = stopwatch()
        with pytest.raises(TooLarge, match="larger than 1 MiB"):
            await http_source.get(client, server.url("/account"), {}, TIMEOUT_S)
        elapsed = stopwatch() - started
    assert elapsed < TIMEOUT_S
    # What the server got out before we hung up: 1 MiB and the socket buffers, not 64 MiB.
    assert server.sent and max(server.sent) < HUGE // 4


async def test_a_body_dripping_in_is_cut_off_at_the_timeout(client: httpx.AsyncClient) -> None:
    with HostileHttpServer(drip("drip_body")) as server:
        started = stopwatch()
        with pytest.raises(SourceError, match="no answer within 1s"):
            await http_source.get(client, server.url("/account"), {}, TIMEOUT_S)
        elapsed = stopwatch() - started
    assert TIMEOUT_S * 0.9 < elapsed < TIMEOUT_S * 2


async def test_headers_dripping_in_are_cut_off_at_the_timeout(client: httpx.AsyncClient) -> None:
    with HostileHttpServer(drip("drip_headers")) as server:
        started = stopwatch()
        with pytest.raises(SourceError, match="no answer within 1s"):
            await http_source.get(client, server.url("/account"), {}, TIMEOUT_S)
        elapsed = stopwatch() - started
    assert elapsed < TIMEOUT_S * 2


# --- the watchdogs: UNKNOWN, except http_health, for which no answer in time is a BREACH ---


def watchdogs(url: str, client: httpx.AsyncClient) -> list[Any]:
    common = {"timeout": "1s", "breach": 1}
    value = {"name": "v", "kind": "http_value", "url": url, "path": "a", **common}
    prom = {"name": "p", "kind": "prometheus_query", "url": url, "query": "up", **common}
    return [
        HttpValue(HttpValueConfig.model_validate(value), client),
        PrometheusQuery(PrometheusQueryConfig.model_validate(prom), client),
    ]


async def test_value_watchdogs_are_unknown_for_a_huge_body(client: httpx.AsyncClient) -> None:
    with HostileHttpServer(Behaviour("huge", HUGE, declare_length=False)) as server:
        for dog in watchdogs(server.url("/"), client):
            [verdict] = await evaluate(dog, None, time.time())
            assert verdict.status is Status.UNKNOWN
            assert "larger than 1 MiB" in verdict.reason


async def test_http_health_is_unknown_for_a_huge_body_and_breaches_on_a_drip(
    client: httpx.AsyncClient,
) -> None:
    config = {"name": "h", "kind": "http_health", "timeout": "1s"}
    with HostileHttpServer(Behaviour("huge", HUGE, declare_length=False)) as server:
        dog = HttpHealth(HttpHealthConfig.model_validate({**config, "url": server.url()}), client)
        [verdict] = await evaluate(dog, None, time.time())
    # An answer came, too large to judge: not being able to see, not a failure seen.
    assert verdict.status is Status.UNKNOWN and "larger than 1 MiB" in verdict.reason
    with HostileHttpServer(drip("drip_body")) as server:
        dog = HttpHealth(HttpHealthConfig.model_validate({**config, "url": server.url()}), client)
        started = stopwatch()
        [verdict] = await evaluate(dog, None, time.time())
        elapsed = stopwatch() - started
    # No whole answer within 90% of the timeout is this kind's failure: the endpoint is hung.
    assert verdict.status is Status.BREACH and "no answer" in verdict.reason
    assert elapsed < TIMEOUT_S * 2


# --- the http actuator: each attempt bounded; it fails and escalates as before --------------


def kill_api(client: httpx.AsyncClient, url: str, **overrides: Any) -> HttpActuator:
    raw = {"kind": "http", "level": "flatten", "url": url, "timeout": "500ms", "retry_for": 0}
    return HttpActuator("kill_api", HttpActuatorConfig.model_validate({**raw, **overrides}), client)


async def test_a_kill_switch_dripping_its_headers_fails_within_its_timeout(
    client: httpx.AsyncClient,
) -> None:
    with HostileHttpServer(drip("drip_headers")) as server:
        api = kill_api(client, server.url("/kill"))
        started = stopwatch()
        with pytest.raises(ActuatorError, match=r"failed 1 attempt.*no answer within 500ms"):
            await api.engage(DECISION, ACTION_CONTEXT)
        elapsed = stopwatch() - started
    assert elapsed < 0.5 * 2
    assert api.on_failure == ()  # nothing configured here; the daemon escalates on the raise


async def test_a_dripping_kill_switch_is_retried_until_retry_for(client: httpx.AsyncClient) -> None:
    with HostileHttpServer(drip("drip_headers")) as server:
        api = kill_api(client, server.url("/kill"), retry_for="1s")
        started = stopwatch()
        with pytest.raises(ActuatorError, match=r"failed [2-9] attempt"):
            await api.engage(DECISION, ACTION_CONTEXT)
        elapsed = stopwatch() - started
    # Every attempt gave up after 500 ms, so there was time for more than one.
    assert elapsed < api.max_duration_s


async def test_a_verify_answer_too_large_or_dripping_is_not_a_confirmation(
    client: httpx.AsyncClient,
) -> None:
    with (
        HostileHttpServer(Behaviour("huge", HUGE)) as huge,
        HostileHttpServer(drip("drip_body")) as slow,
    ):
        for url, problem in ((huge.url("/status"), "larger than 1 MiB"), (slow.url(), "500ms")):
            api = kill_api(client, url, verify={"url": url, "expect": "ok"})
            assert api.verifier is not None
            started = stopwatch()
            with pytest.raises(ActuatorError, match=problem):
                await api.verifier.probe(client)
            assert stopwatch() - started < 0.5 * 2


# --- the deadman ----------------------------------------------------------------------------


async def test_a_deadman_beat_to_a_dripping_venue_fails_within_its_timeout(
    client: httpx.AsyncClient,
) -> None:
    with HostileHttpServer(drip("drip_headers")) as server:
        config = DeadmanConfig.model_validate(
            {"kind": "deadman", "url": server.url("/cancel-after"), "timeout": "500ms"}
        )
        deadman = Deadman("venue_cod", config, client, "sup-a")
        started = stopwatch()
        with pytest.raises(ActuatorError, match="no answer within 500ms"):
            await deadman.heartbeat(1000.0)
        elapsed = stopwatch() - started
    assert elapsed < 0.5 * 2
    assert deadman.failures == 1

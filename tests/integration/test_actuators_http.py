"""The http actuator against a real kill-switch server on 127.0.0.1.

The server counts activations by Idempotency-Key: retries carry one key and activate once;
a switch that never confirms is declared failed (and escalated); a server that is down fails
the action while a Redis flag engaged alongside it still sets.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError
from redis.asyncio import Redis

from supervisor.actuators.base import ActionContext, Actuator, Outcome
from supervisor.actuators.http import HttpActuator, HttpActuatorConfig, encode_json, render
from supervisor.actuators.redis_flag import RedisFlag, RedisFlagConfig
from supervisor.errors import ActuatorError
from supervisor.model import Decision, Status
from supervisor.sources import http as http_source
from testbed.killswitch_server import Behaviour, KillSwitchServer

pytestmark = pytest.mark.anyio

TOKEN = "s3cret-token-value"
DECISION = Decision(
    "spx_ticks", Status.CRITICAL, ("kill_api",), "SPX age 61.0s > 60s", "inc-1", 1000.0
)
CONTEXT = ActionContext(instance_id="sup-a", now=1000.5)
BODY = {"reason": "{reason}", "close_positions": True, "operator": "{instance_id}"}

StartServer = Callable[..., KillSwitchServer]


@pytest.fixture
def start_server() -> Iterator[StartServer]:
    started: list[KillSwitchServer] = []

    def start(**behaviour: Any) -> KillSwitchServer:
        server = KillSwitchServer(Behaviour(token=TOKEN, **behaviour)).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with http_source.client() as shared:
        yield shared


def kill_api(client: httpx.AsyncClient, server: KillSwitchServer, **overrides: Any) -> HttpActuator:
    raw: dict[str, Any] = {
        "kind": "http",
        "level": "flatten",
        "url": server.activate_url,
        "headers": {"Authorization": f"Bearer {TOKEN}"},
        "json": BODY,
        "verify": {"url": server.status_url, "expect": "kill_switch_active == `true`"},
        "timeout": "1s",
        "retry_for": "2s",
        "on_failure": ["kill_flag"],
    }
    config = HttpActuatorConfig.model_validate({**raw, **overrides})
    return HttpActuator("kill_api", config, client)


def kill_flag(redis: Redis) -> RedisFlag:
    config = RedisFlagConfig.model_validate(
        {"kind": "redis_flag", "level": "halted", "key": "ops:kill_switch"}
    )
    return RedisFlag("kill_flag", config, redis)


async def test_500_three_times_then_200_one_key_one_activation(
    client: httpx.AsyncClient, start_server: StartServer
) -> None:
    server = start_server(fail_first=3)
    outcome = await kill_api(client, server).engage(DECISION, CONTEXT)
    requests = server.activation_requests()
    assert [r.status for r in requests] == [500, 500, 500, 200]
    assert {r.headers["idempotency-key"] for r in requests} == {"inc-1:kill_api"}
    assert server.activations == 1
    assert outcome.changed is True
    assert outcome.response_code == 200
    assert "HTTP 200 after 4 attempt(s)" in outcome.detail
    assert "verified after 1 check(s)" in outcome.detail


async def test_engaging_again_for_the_same_incident_reuses_the_key(
    client: httpx.AsyncClient, start_server: StartServer
) -> None:
    server = start_server()
    actuator = kill_api(client, server)
    assert (await actuator.engage(DECISION, CONTEXT)).changed is True
    again = await actuator.engage(DECISION, ActionContext("sup-a", 1001.0))
    assert again.changed is False
    assert len(server.activation_requests()) == 2
    assert server.activations == 1  # the server replayed the first answer
    other = Decision("margin", Status.BREACH, ("kill_api",), "margin 0.6", "inc-2", 1002.0)
    await actuator.engage(other, CONTEXT)
    assert server.activations == 2
    assert server.activation_requests()[-1].headers["idempotency-key"] == "inc-2:kill_api"


@pytest.mark.parametrize("status", [500, 503, 429, 408])
async def test_retries_transient_statuses(
    client: httpx.AsyncClient, start_server: StartServer, status: int
) -> None:
    server = start_server(fail_first=1, fail_status=status)
    outcome = await kill_api(client, server).engage(DECISION, CONTEXT)
    assert [r.status for r in server.activation_requests()] == [status, 200]
    assert outcome.response_code == 200


async def test_never_confirmed_fails_after_retry_for(
    client: httpx.AsyncClient, start_server: StartServer
) -> None:
    server = start_server(never_confirm=True)
    actuator = kill_api(client, server, retry_for="1s")
    started = time.monotonic()
    with pytest.raises(ActuatorError, match="sent but not confirmed") as caught:
        await actuator.engage(DECISION, CONTEXT)
    elapsed = time.monotonic() - started
    assert 1.0 <= elapsed < 1.0 + actuator.config.timeout_s + 2.0  # retried, then gave up
    assert "kill_switch_active == `true`" in str(caught.value)
    assert server.activations == 1
    assert len(server.requests("/status")) >= 2  # re-checked, not asked once
    assert await actuator.is_engaged() is False


async def escalate(
    actuators: dict[str, Actuator], names: tuple[str, ...], decision: Decision
) -> dict[str, Outcome | BaseException]:
    """What the daemon does: run the listed actuators concurrently; the `on_failure` list of
    each one that fails runs next (once per incident)."""
    results = await asyncio.gather(
        *(actuators[n].engage(decision, CONTEXT) for n in names), return_exceptions=True
    )
    outcomes: dict[str, Outcome | BaseException] = dict(zip(names, results, strict=True))
    follow_up: list[str] = []
    for name, result in zip(names, results, strict=True):
        if isinstance(result, ActuatorError):
            follow_up += [n for n in getattr(actuators[name], "on_failure", ()) if n not in names]
    if follow_up:
        outcomes |= await escalate(actuators, tuple(dict.fromkeys(follow_up)), decision)
    return outcomes


async def test_unverified_action_escalates_to_on_failure(
    client: httpx.AsyncClient, start_server: StartServer, redis: Redis
) -> None:
    server = start_server(never_confirm=True)
    actuators: dict[str, Actuator] = {
        "kill_api": kill_api(client, server, retry_for="1s"),
        "kill_flag": kill_flag(redis),
    }
    outcomes = await escalate(actuators, ("kill_api",), DECISION)
    assert isinstance(outcomes["kill_api"], ActuatorError)
    flagged = outcomes["kill_flag"]
    assert isinstance(flagged, Outcome) and flagged.changed is True
    assert await redis.get("ops:kill_switch") == b"1"


async def test_server_down_fails_while_the_redis_flag_engages(
    client: httpx.AsyncClient, start_server: StartServer, redis: Redis
) -> None:
    server = start_server()
    server.stop()  # down: the port now refuses connections
    api = kill_api(client, server, retry_for="1s")
    started = time.monotonic()
    api_result, flag_result = await asyncio.gather(
        api.engage(DECISION, CONTEXT),
        kill_flag(redis).engage(DECISION, CONTEXT),
        return_exceptions=True,
    )
    assert isinstance(api_result, ActuatorError)
    assert "ConnectError" in str(api_result)
    assert time.monotonic() - started >= 1.0  # retried for retry_for, not given up at once
    assert isinstance(flag_result, Outcome) and flag_result.changed is True
    assert await redis.get("ops:kill_switch") == b"1"
    with pytest.raises(ActuatorError, match="verify GET"):
        await api.is_engaged()  # no answer: unknown, not "not engaged"


async def test_4xx_fails_at_once_and_never_shows_the_secret(
    client: httpx.AsyncClient, start_server: StartServer
) -> None:
    server = start_server()
    wrong = kill_api(client, server, headers={"Authorization": "Bearer wrong-secret"})
    with pytest.raises(ActuatorError, match="HTTP 401 on attempt 1: not retried") as caught:
        await wrong.engage(DECISION, CONTEXT)
    assert len(server.activation_requests()) == 1  # not retried
    assert "wrong-secret" not in str(caught.value)
    assert not server.active


async def test_headers_from_environment_secret(
    client: httpx.AsyncClient, start_server: StartServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAFETY_API_TOKEN", TOKEN)
    server = start_server()
    actuator = kill_api(
        client,
        server,
        headers={"Authorization": "Bearer ${SAFETY_API_TOKEN}", "X-Ops-Actor": "sup"},
    )
    assert TOKEN not in repr(actuator.config)
    await actuator.engage(DECISION, CONTEXT)
    request = server.activation_requests()[0]
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["x-ops-actor"] == "sup"
    assert request.headers["content-type"] == "application/json"


async def test_body_template_with_braces_and_non_ascii(
    client: httpx.AsyncClient, start_server: StartServer
) -> None:
    server = start_server()
    reason = "age {watchdog} }{ {0} {{x}} %s \\n – café ✓ 日本 \ud800"
    decision = Decision("spx_ticks", Status.CRITICAL, ("kill_api",), reason, "inc-9", 1.0)
    body = {
        "reason": "{reason}",
        "meta": {"list": ["{watchdog}", 3, True, None, "{severity}"], "literal": "{ x } {}"},
        "text": "incident {incident_id} by {instance_id}",
    }
    await kill_api(client, server, json=body).engage(decision, CONTEXT)
    sent = server.activation_requests()[0]
    assert sent.body.isascii()
    assert sent.json() == {
        "reason": reason,
        "meta": {"list": ["spx_ticks", 3, True, None, "CRITICAL"], "literal": "{ x } {}"},
        "text": "incident inc-9 by sup-a",
    }


def test_unknown_placeholder_is_refused_at_config_time() -> None:
    with pytest.raises(ValidationError, match=r"unknown placeholder\(s\) \{reson\}"):
        HttpActuatorConfig.model_validate(
            {"kind": "http", "level": "flatten", "url": "http://x", "json": {"a": ["{reson}"]}}
        )


async def test_is_engaged_reads_verify(
    client: httpx.AsyncClient, start_server: StartServer
) -> None:
    server = start_server()
    actuator = kill_api(client, server)
    assert actuator.readable is True
    assert await actuator.is_engaged() is False
    await actuator.engage(DECISION, CONTEXT)
    assert await actuator.is_engaged() is True


async def test_without_verify_is_engaged_only_by_this_process(
    client: httpx.AsyncClient, start_server: StartServer
) -> None:
    server = start_server()
    actuator = kill_api(client, server, verify=None, idempotency_header=None)
    assert actuator.readable is False
    assert await actuator.is_engaged() is False
    outcome = await actuator.engage(DECISION, CONTEXT)
    assert "not verified" in outcome.detail
    assert "idempotency-key" not in server.activation_requests()[0].headers
    assert await actuator.is_engaged() is True


async def test_timeout_bound_is_exposed(
    client: httpx.AsyncClient, start_server: StartServer
) -> None:
    actuator = kill_api(client, start_server(), retry_for="60s", timeout="2s")
    assert actuator.max_duration_s == pytest.approx(65.0)
    assert actuator.on_failure == ("kill_flag",)


@given(reason=st.text(alphabet=st.characters(exclude_categories=())))
def test_render_never_raises_and_inserts_the_reason_verbatim(reason: str) -> None:
    values = {"reason": reason, "watchdog": "w", "instance_id": "i", "incident_id": "n"}
    template = {"a": "{reason}", "b": ["[{reason}|{watchdog}]", 1], "c": "{severity}"}
    rendered = render(template, values)
    assert rendered == {"a": reason, "b": [f"[{reason}|w]", 1], "c": "{severity}"}
    assert json.loads(encode_json(rendered)) == rendered


async def test_sent_is_called_once_the_request_is_written_before_the_answer(
    client: httpx.AsyncClient, start_server: StartServer
) -> None:
    """The daemon's cycle waits for `sent` before its own bookkeeping: it must come when the
    request is on the wire, not when the venue has answered (here: 0.5 s later)."""
    server = start_server(hold_first=1, hold_s=0.5)
    actuator = kill_api(client, server, verify=None)
    sent_at: list[float] = []
    context = ActionContext("sup-a", 1000.5, lambda: sent_at.append(time.monotonic()))
    started = time.monotonic()
    await actuator.engage(DECISION, context)
    answered = time.monotonic()
    assert len(sent_at) == 1
    assert sent_at[0] - started < 0.3 and answered - sent_at[0] >= 0.4


async def test_the_release_request_releases_the_venue_and_waits_until_it_reads_released(
    client: httpx.AsyncClient, start_server: StartServer
) -> None:
    server = start_server()
    actuator = kill_api(client, server, release={"json": {"enabled": True}})
    assert (await actuator.engage(DECISION, CONTEXT)).changed is True
    outcome = await actuator.disengage(CONTEXT)
    assert not server.active and server.releases == 1
    release = [r for r in server.activation_requests() if r.json() == {"enabled": True}]
    assert len(release) == 1
    assert release[0].headers["authorization"] == f"Bearer {TOKEN}"  # the action's token
    assert "released at the venue after 1 check(s)" in outcome.detail
    # The venue released: the next incident's action engages it, and says so.
    later = Decision("w1", Status.BREACH, ("kill_api",), "again", "inc-2", 1002.0)
    assert await actuator.is_engaged() is False
    assert (await actuator.engage(later, CONTEXT)).changed is True
    assert server.activations == 2


async def test_a_release_the_venue_never_takes_fails_and_says_so(
    client: httpx.AsyncClient, start_server: StartServer
) -> None:
    server = start_server()
    actuator = kill_api(client, server, release={"json": {"release": "ignored"}}, retry_for="300ms")
    await actuator.engage(DECISION, CONTEXT)
    with pytest.raises(ActuatorError, match="release sent but the venue still reads engaged"):
        await actuator.disengage(CONTEXT)
    assert server.active


async def test_without_a_release_request_the_reset_leaves_it_to_the_venue(
    client: httpx.AsyncClient, start_server: StartServer
) -> None:
    actuator = kill_api(client, start_server())
    with pytest.raises(ActuatorError, match="cannot be released from here"):
        await actuator.disengage(CONTEXT)

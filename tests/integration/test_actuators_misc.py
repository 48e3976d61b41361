"""redis_flag against a real redis-server, command with real processes, deadman against a real
HTTP server, and how protection build them."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from supervisor.actuators.base import ActionContext
from supervisor.actuators.command import TAIL_BYTES, CommandActuator, CommandActuatorConfig
from supervisor.actuators.deadman import Deadman, DeadmanConfig, build_deadmen
from supervisor.actuators.http import HttpActuator
from supervisor.actuators.redis_flag import RedisFlag, RedisFlagConfig
from supervisor.config.settings import Settings
from supervisor.errors import ActuatorError
from supervisor.model import Decision, Status, TradingState
from supervisor.protection import build_protection
from supervisor.sources import http as http_source
from supervisor.sources.clients import Clients
from testbed.killswitch_server import KillSwitchServer
from testbed.waiting import wait_until

pytestmark = pytest.mark.anyio

DECISION = Decision(
    "margin", Status.BREACH, ("flatten",), "margin 0.61 > 0.50; it's {bad} — ✓", "inc-7", 1.0
)
CONTEXT = ActionContext(instance_id="sup-a", now=1000.5)
PY = sys.executable


@pytest.fixture
def server() -> Iterator[KillSwitchServer]:
    with KillSwitchServer() as running:
        yield running


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with http_source.client() as shared:
        yield shared


# --- redis_flag ----------------------------------------------------------------------------


def flag(redis: Redis, **overrides: Any) -> RedisFlag:
    raw = {"kind": "redis_flag", "level": "halted", "key": "ops:kill_switch", **overrides}
    return RedisFlag("kill_flag", RedisFlagConfig.model_validate(raw), redis)


async def test_redis_flag_sets_once_and_reads_back(redis: Redis) -> None:
    kill_flag = flag(redis)
    assert kill_flag.level is TradingState.HALTED
    assert await kill_flag.is_engaged() is False
    assert (await kill_flag.engage(DECISION, CONTEXT)).changed is True
    assert await redis.get("ops:kill_switch") == b"1"
    assert await kill_flag.is_engaged() is True
    assert (await kill_flag.engage(DECISION, CONTEXT)).changed is False


async def test_redis_flag_overwrites_another_value(redis: Redis) -> None:
    await redis.set("trading:enabled", "true")
    disable = flag(redis, key="trading:enabled", value="false")
    assert await disable.is_engaged() is False
    assert (await disable.engage(DECISION, CONTEXT)).changed is True
    assert await redis.get("trading:enabled") == b"false"


async def test_redis_flag_two_at_once_change_once(redis: Redis) -> None:
    results = await asyncio.gather(*(flag(redis).engage(DECISION, CONTEXT) for _ in range(8)))
    assert [r.changed for r in results].count(True) == 1


async def test_redis_flag_manual_release_deletes_it(redis: Redis) -> None:
    kill_flag = flag(redis)
    await kill_flag.engage(DECISION, CONTEXT)
    assert (await kill_flag.disengage(CONTEXT)).changed is True
    assert await redis.exists("ops:kill_switch") == 0
    assert await kill_flag.is_engaged() is False


# --- command -------------------------------------------------------------------------------


def command(argv: list[str], timeout: str = "10s") -> CommandActuator:
    raw = {"kind": "command", "level": "flatten", "argv": argv, "timeout": timeout}
    return CommandActuator("flatten", CommandActuatorConfig.model_validate(raw))


async def test_command_success_captures_output_and_context() -> None:
    script = (
        "import os, sys\n"
        "print('reason=' + os.environ['SUPERVISOR_REASON'])\n"
        "print(os.environ['SUPERVISOR_WATCHDOG'], os.environ['SUPERVISOR_INCIDENT_ID'],"
        " os.environ['SUPERVISOR_INSTANCE_ID'], os.environ['SUPERVISOR_SEVERITY'])\n"
        "print('warned', file=sys.stderr)\n"
        "print('stdin', repr(sys.stdin.read()))\n"
    )
    actuator = command([PY, "-c", script])
    assert actuator.readable is False and await actuator.is_engaged() is False
    outcome = await actuator.engage(DECISION, CONTEXT)
    assert outcome.changed is True and outcome.response_code == 0
    assert "reason=margin 0.61 > 0.50; it's {bad} — ✓" in outcome.detail
    assert "margin inc-7 sup-a BREACH" in outcome.detail
    assert "stderr: 'warned'" in outcome.detail
    assert "stdin ''" in outcome.detail  # stdin is /dev/null
    assert await actuator.is_engaged() is True
    assert (await actuator.engage(DECISION, CONTEXT)).changed is False


async def test_command_non_zero_exit_fails_with_code_and_stderr() -> None:
    script = "import sys; print('cannot reach broker', file=sys.stderr); sys.exit(3)"
    with pytest.raises(ActuatorError, match="exited with code 3; stderr: 'cannot reach broker'"):
        await command([PY, "-c", script]).engage(DECISION, CONTEXT)


async def test_command_argv_is_never_a_shell(tmp_path: Path) -> None:
    marker = tmp_path / "injected"
    argv = [PY, "-c", "import sys; print(sys.argv[1:])", f"x; touch {marker}", "$(id)", "*"]
    outcome = await command(argv).engage(DECISION, CONTEXT)
    assert f"['x; touch {marker}', '$(id)', '*']" in outcome.detail
    assert not marker.exists()


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


async def test_command_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    script = (
        "import subprocess, sys, time\n"
        f"child = subprocess.Popen([{PY!r}, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
        "print('started', flush=True)\n"
        "time.sleep(60)\n"
    )
    started = time.monotonic()
    with pytest.raises(ActuatorError, match=r"killed after 1s timeout; stdout: 'started'"):
        await command([PY, "-c", script], timeout="1s").engage(DECISION, CONTEXT)
    assert time.monotonic() - started < 5
    grandchild = int(pid_file.read_text())
    wait_until(lambda: not alive(grandchild), 5, f"grandchild {grandchild} to die")


async def test_command_output_is_bounded() -> None:
    script = "print('a' * 100_000 + 'THE-END')"
    outcome = await command([PY, "-c", script]).engage(DECISION, CONTEXT)
    assert "THE-END" in outcome.detail
    assert len(outcome.detail) < 2 * TAIL_BYTES + 200


async def test_command_missing_program_fails() -> None:
    with pytest.raises(ActuatorError, match="cannot run '/nonexistent/kill-switch'"):
        await command(["/nonexistent/kill-switch"]).engage(DECISION, CONTEXT)


async def test_command_cancelled_from_outside_leaves_no_process(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    script = (
        f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    )
    task = asyncio.create_task(command([PY, "-c", script]).engage(DECISION, CONTEXT))
    await asyncio.to_thread(wait_until, pid_file.exists, 10, "the command to start")
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    pid = int(pid_file.read_text())
    wait_until(lambda: not alive(pid), 5, f"command {pid} to die")


# --- deadman -------------------------------------------------------------------------------


def deadman(client: httpx.AsyncClient, server: KillSwitchServer) -> Deadman:
    raw = {
        "kind": "deadman",
        "url": f"{server.base_url}/0/private/CancelAllOrdersAfter",
        "headers": {"API-Key": "venue-secret"},
        "json": {"timeout": 60, "by": "{instance_id}", "at": "{now}"},
        "timeout": "500ms",
    }
    return Deadman("venue_cod", DeadmanConfig.model_validate(raw), client, "sup-a")


async def test_deadman_posts_on_every_call(
    client: httpx.AsyncClient, server: KillSwitchServer
) -> None:
    cod = deadman(client, server)
    outcomes = [await cod.heartbeat(1000.0 + i) for i in range(3)]
    assert [o.changed for o in outcomes] == [True, False, False]
    assert [o.response_code for o in outcomes] == [200, 200, 200]
    posts = server.requests("/0/private/CancelAllOrdersAfter")
    assert [p.method for p in posts] == ["POST"] * 3
    assert [p.json() for p in posts] == [
        {"timeout": 60, "by": "sup-a", "at": f"{1000.0 + i:.3f}"} for i in range(3)
    ]
    assert posts[0].headers["api-key"] == "venue-secret"
    assert cod.beats == 3 and cod.last_ok == 1002.0


async def test_deadman_failure_raises_and_recovers(
    client: httpx.AsyncClient, server: KillSwitchServer
) -> None:
    cod = deadman(client, server)
    await cod.heartbeat(1.0)
    server.stop()
    with pytest.raises(ActuatorError, match="ConnectError") as caught:
        await cod.heartbeat(2.0)
    assert "venue-secret" not in str(caught.value)
    assert cod.failures == 1
    server.start()  # the same port again
    assert (await cod.heartbeat(3.0)).changed is True  # re-armed after the failure
    assert cod.failures == 0


# --- wiring --------------------------------------------------------------------------------

WATCHDOG = {"name": "w", "kind": "redis_value", "key": "k", "breach": 1}  # a config needs one


async def test_components_build_the_new_kinds(redis: Redis, client: httpx.AsyncClient) -> None:
    settings = Settings(
        watchdogs=[WATCHDOG],
        actuators={
            "kill_flag": {"kind": "redis_flag", "level": "halted", "key": "ops:kill_switch"},
            "kill_api": {"kind": "http", "level": "flatten", "url": "http://127.0.0.1:1/k"},
            "flatten": {"kind": "command", "level": "flatten", "argv": ["true"]},
        },
    )
    built = build_protection(settings, Clients(redis, client)).actuators
    assert isinstance(built["kill_flag"], RedisFlag)
    assert isinstance(built["kill_api"], HttpActuator)
    assert isinstance(built["flatten"], CommandActuator)


async def test_build_deadmen_picks_the_deadman_entries(
    redis: Redis, client: httpx.AsyncClient
) -> None:
    settings = Settings(
        watchdogs=[WATCHDOG],
        actuators={
            "kill_flag": {"kind": "redis_flag", "level": "halted", "key": "ops:kill_switch"},
            "venue_cod": {"kind": "deadman", "url": "http://127.0.0.1:1/cod"},
        },
    )
    deadmen = build_deadmen(
        settings.actuators, settings.supervisor.instance_id, Clients(redis, client)
    )
    assert list(deadmen) == ["venue_cod"]
    assert deadmen["venue_cod"].instance_id == settings.supervisor.instance_id


def test_deadman_refuses_unknown_placeholders() -> None:
    with pytest.raises(ValueError, match=r"\{reason\}"):
        DeadmanConfig.model_validate(
            {"kind": "deadman", "url": "http://x", "json": {"r": "{reason}"}}
        )

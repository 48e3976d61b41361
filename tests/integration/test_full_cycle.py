"""Every actuator's whole cycle, as an operator runs it: a fault trips it, the venue is
engaged, the operator resets it with `trading-supervisor reset` (the venue released by the
supervisor where a release request is configured, else by the operator, before or after the
reset), trading is ACTIVE and stays ACTIVE, and a new fault trips it again under a new
incident, reported as an engagement.

The daemon runs in-process with an injected clock (one watchdog cycle or housekeeping pass at
a time), against the real test Redis and a real kill-switch server with engaged/released
state and a release request (testbed/killswitch_server.py); the reset is the real CLI.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import pytest
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from supervisor.config.loading import load_config
from supervisor.constants import RELEASE_WAIT_WARN_S
from supervisor.daemon import Supervisor
from supervisor.kinds import ACTUATOR_KINDS, kind_gauges
from supervisor.model import Health, TradingState
from supervisor.publish.metrics import Metrics
from testbed.config_blocks import supervisor_tables
from testbed.daemon_process import cli
from testbed.killswitch_server import Behaviour, KillSwitchServer
from testbed.redis_server import RedisServer
from tests.integration.test_daemon_logic import Clock, settle, spx_watchdog

pytestmark = pytest.mark.anyio

REASON = "venue confirmed healthy again after the drill"
WAITING = "reset, waiting for the venue to release"


HTTP = """
[actuators.kill]
kind = "http"
level = "flatten"
url = "{activate}"
json = {{ reason = "{{reason}}", enabled = false }}
timeout = "500ms"
retry_for = "2s"
{extra}
"""
VERIFY = 'verify = {{ url = "{status}", expect = "kill_switch_active == `true`" }}'
RELEASE = "release = { json = { enabled = true } }"  # runbook 002: the same endpoint


@dataclass(frozen=True)
class Kind:
    """One way to configure an actuator, and how the test reads and releases its venue."""

    name: str  # the actuator's name in the config
    level: TradingState
    # "supervisor", "operator after", "operator before", "operator, unread" (it cannot be
    # read back: the reset is all the supervisor knows) or "nothing" (a command)
    released_by: str

    @property
    def group(self) -> str:
        return "breaker" if self.level is TradingState.REDUCE_ONLY else "kill"


KINDS = {
    "http, release request": Kind("kill", TradingState.FLATTEN, "supervisor"),
    "http, operator releases after the reset": Kind("kill", TradingState.FLATTEN, "operator after"),
    "http, operator releases before the reset": Kind(
        "kill", TradingState.FLATTEN, "operator before"
    ),
    "http, not verified": Kind("kill", TradingState.FLATTEN, "operator, unread"),
    "redis_breaker": Kind("breaker", TradingState.REDUCE_ONLY, "supervisor"),
    "redis_flag": Kind("flag", TradingState.HALTED, "supervisor"),
    "command": Kind("halt_cmd", TradingState.HALTED, "nothing"),
}


def test_every_action_kind_has_a_whole_cycle() -> None:
    """A case is named after its kind ("http, ..."): a new action kind needs its own cycle."""
    assert {case.split(",")[0] for case in KINDS} == {kind.name for kind in ACTUATOR_KINDS}


def actuator_config(case: str, server: KillSwitchServer, tmp_path: Path) -> str:
    urls = {"activate": server.activate_url, "status": server.status_url}
    if case == "http, release request":
        return HTTP.format(**urls, extra=VERIFY.format(**urls) + "\n" + RELEASE)
    if case.startswith("http, operator"):
        return HTTP.format(**urls, extra=VERIFY.format(**urls))
    if case == "http, not verified":
        return HTTP.format(**urls, extra="")
    if case == "redis_breaker":
        return '[actuators.breaker]\nkind = "redis_breaker"\nlevel = "reduce_only"\n'
    if case == "redis_flag":
        return '[actuators.flag]\nkind = "redis_flag"\nlevel = "halted"\nkey = "ops:halt"\n'
    script = f'echo "$SUPERVISOR_INCIDENT_ID" >> {tmp_path / "halted.txt"}'
    argv = json.dumps(["sh", "-c", script])
    return f'[actuators.halt_cmd]\nkind = "command"\nlevel = "halted"\nargv = {argv}\n'


class Venue:
    """What the actuator controls, read as the trading stack reads it."""

    def __init__(self, case: str, server: KillSwitchServer, redis: Redis, tmp_path: Path):
        self.case = case
        self.server = server
        self.redis = redis
        self.commands = tmp_path / "halted.txt"

    async def engaged(self) -> bool:
        if self.case.startswith("http"):
            return self.server.active
        if self.case == "redis_breaker":
            raw = await self.redis.get("circuit_breaker:state")
            return raw is not None and json.loads(raw)["state"] == "TRIPPED"
        if self.case == "redis_flag":
            return await self.redis.get("ops:halt") == b"1"
        return self.commands.exists()  # a command: it ran (it has no state to read)

    async def incidents(self) -> list[str]:
        """The incident of every engagement the venue saw, in order."""
        if self.case.startswith("http"):
            return [key.split(":")[0] for key in self.server.received_keys]
        if self.case == "redis_breaker":
            history = await self.redis.zrange("circuit_breaker:history", 0, -1)
            entries = [json.loads(raw) for raw in history if isinstance(raw, bytes)]
            return [e["incident_id"] for e in entries if e["event"] == "trip"]
        if self.case == "command":
            return self.commands.read_text().split()
        return []


@pytest.fixture
def server() -> Iterator[KillSwitchServer]:
    with KillSwitchServer(Behaviour()) as venue:
        yield venue


@pytest.fixture
def clock() -> Clock:
    return Clock()


def config_text(tmp_path: Path, redis_url: str, actuator: str, name: str) -> str:
    """One tick watchdog calling `actuator` (TOML) named `name`."""
    tables = supervisor_tables(tmp_path / "state", redis_url, instance_id="sup-cycle")
    return tables + "\n" + actuator + "\n" + spx_watchdog(name)


def write_config(tmp_path: Path, redis_url: str, case: str, server: KillSwitchServer) -> Path:
    path = tmp_path / "supervisor.toml"
    actuator = actuator_config(case, server, tmp_path)
    path.write_text(config_text(tmp_path, redis_url, actuator, KINDS[case].name), "utf-8")
    return path


@pytest.fixture
async def make_daemon(clock: Clock, redis: Redis) -> AsyncIterator[list[Supervisor]]:
    started: list[Supervisor] = []
    yield started
    for daemon in started:
        await settle(daemon)
        await daemon.context.assembly.close()
        daemon.context.notifier.close()


def start(config: Path, clock: Clock, started: list[Supervisor]) -> Supervisor:
    metrics = Metrics(CollectorRegistry(), kind_gauges=kind_gauges())
    daemon = Supervisor(load_config(config), config, metrics=metrics, clock=clock)
    started.append(daemon)
    return daemon


async def run_w1(daemon: Supervisor, redis: Redis, clock: Clock, tick_age_s: float) -> None:
    clock.now += 1
    await redis.set("ticks:SPX", f"{clock.now - tick_age_s:.3f}")
    await daemon.cycle.run("w1")
    await settle(daemon)


async def housekeeping(daemon: Supervisor, clock: Clock, passes: int = 1) -> None:
    for _ in range(passes):
        clock.now += 1
        await daemon.housekeeping.sync(clock.now)
        await settle(daemon)


async def reset(config: Path, group: str) -> str:
    """`trading-supervisor reset GROUP --reason ...`, as the operator types it."""
    args = ("reset", group, "--reason", REASON, "--operator", "oncall", "--config", str(config))
    done = await anyio.to_thread.run_sync(lambda: cli(*args))
    assert done.returncode == 0, done.stderr
    return done.stdout


def trading(daemon: Supervisor) -> TradingState:
    summary = daemon.context.runtime.summary
    assert summary is not None
    return summary.trading_state


def metric(daemon: Supervisor, name: str, **labels: str) -> float | None:
    return daemon.context.metrics.registry.get_sample_value(name, labels)


async def published(redis: Redis, field: str) -> str:
    raw = await redis.hget("sup:state", field)
    return raw.decode() if isinstance(raw, bytes) else ""


def incident_id(daemon: Supervisor) -> str | None:
    """The id of w1's open incident (a call: mypy would narrow an attribute for good)."""
    incident = daemon.context.runtime.policy["w1"].incident
    return None if incident is None else incident.id


def active(venue: KillSwitchServer) -> bool:
    return venue.active


@pytest.mark.parametrize("case", list(KINDS))
async def test_trip_reset_resume_and_trip_again(
    case: str,
    tmp_path: Path,
    redis_server: RedisServer,
    redis: Redis,
    clock: Clock,
    server: KillSwitchServer,
    make_daemon: list[Supervisor],
    caplog: pytest.LogCaptureFixture,
) -> None:
    kind = KINDS[case]
    config = write_config(tmp_path, redis_server.url, case, server)
    daemon = start(config, clock, make_daemon)
    venue = Venue(case, server, redis, tmp_path)
    await daemon.reconciler.restore()
    await run_w1(daemon, redis, clock, tick_age_s=0)
    await housekeeping(daemon, clock)
    assert trading(daemon) is TradingState.ACTIVE

    # Trip: the venue is engaged, the latch says who and why, the outcome is "engaged".
    await run_w1(daemon, redis, clock, tick_age_s=30)
    await housekeeping(daemon, clock)
    assert await venue.engaged()
    assert trading(daemon) is kind.level
    latch = daemon.context.runtime.engaged[kind.name]
    assert (latch.watchdog, latch.reason.startswith(f"{kind.name} tripped by w1")) == ("w1", True)
    engaged = {"actuator": kind.name, "outcome": "engaged"}
    assert metric(daemon, "supervisor_actions_total", **engaged) == 1
    first_incident = incident_id(daemon)
    assert first_incident is not None

    # The fault clears; the latch holds.
    await run_w1(daemon, redis, clock, tick_age_s=0)
    await run_w1(daemon, redis, clock, tick_age_s=0)
    assert incident_id(daemon) is None
    await housekeeping(daemon, clock)
    assert trading(daemon) is kind.level

    if kind.released_by == "operator before":
        server.release()  # at the venue, as runbook 002 says, before the reset
        await housekeeping(daemon, clock, passes=3)
        assert not await venue.engaged()  # not engaged again: the operator released it
        assert server.activations == 1
        assert trading(daemon) is kind.level  # the latch holds until the reset
        summary = daemon.context.runtime.summary
        assert summary is not None
        assert "released at the venue without a reset" in summary.status_line()

    output = await reset(config, kind.group)
    await housekeeping(daemon, clock)

    if kind.released_by == "operator after":
        # Between the reset and the venue's release, every report says the reset waits.
        assert await venue.engaged()
        assert trading(daemon) is kind.level
        summary = daemon.context.runtime.summary
        assert summary is not None and WAITING in summary.status_line()
        assert WAITING in await published(redis, "reason")
        assert metric(daemon, "supervisor_reset_waiting_for_venue", actuator=kind.name) == 1
        await housekeeping(daemon, clock, passes=3)
        assert server.activations == 1 and kind.name not in daemon.context.runtime.engaged
        # Long after the reset, the operator is told once; it is still not engaged again.
        clock.now += RELEASE_WAIT_WARN_S
        await housekeeping(daemon, clock, passes=2)
        told = [r for r in caplog.records if "its store still reads engaged" in r.getMessage()]
        assert len(told) == 1
        summary = daemon.context.runtime.summary
        assert summary is not None and "still engaged at the venue" in summary.status_line()
        assert metric(daemon, "supervisor_action_failing", actuator=kind.name) == 0
        server.release()  # the operator releases it at the venue
        await housekeeping(daemon, clock)
        assert metric(daemon, "supervisor_reset_waiting_for_venue", actuator=kind.name) == 0

    if kind.released_by == "operator, unread":
        server.release()
    if kind.released_by == "supervisor":
        assert f"{kind.name}: released" in output, output
    assert not await venue.engaged() or kind.released_by == "nothing"
    assert trading(daemon) is TradingState.ACTIVE
    assert await published(redis, "trading_state") == "ACTIVE"
    summary = daemon.context.runtime.summary
    assert summary is not None and summary.health is Health.OK

    # It stays ACTIVE for a few intervals: nothing engages it again on its own.
    for _ in range(4):
        await run_w1(daemon, redis, clock, tick_age_s=0)
        await housekeeping(daemon, clock)
        assert trading(daemon) is TradingState.ACTIVE
    assert not any("engaging it again" in r.getMessage() for r in caplog.records)
    if case.startswith("http"):
        assert server.activations == 1

    # A new fault trips it again, under a new incident, and it is an engagement again.
    await run_w1(daemon, redis, clock, tick_age_s=30)
    await housekeeping(daemon, clock)
    second_incident = incident_id(daemon)
    assert second_incident is not None and second_incident != first_incident
    assert await venue.engaged()
    assert trading(daemon) is kind.level
    assert metric(daemon, "supervisor_actions_total", **engaged) == 2
    incidents = await venue.incidents()
    if incidents:
        assert set(incidents) == {first_incident, second_incident}
    if case.startswith("http"):
        assert server.activations == 2  # the new Idempotency-Key engaged the venue again


def http_config(tmp_path: Path, redis_url: str, server: KillSwitchServer, extra: str = "") -> Path:
    urls = {"activate": server.activate_url, "status": server.status_url}
    actuator = HTTP.format(**urls, extra=VERIFY.format(**urls) + "\n" + extra)
    path = tmp_path / "supervisor.toml"
    path.write_text(config_text(tmp_path, redis_url, actuator, "kill"), encoding="utf-8")
    return path


async def test_the_latch_keeps_the_decision_that_engaged_it_when_the_store_check_is_first(
    tmp_path: Path,
    redis_server: RedisServer,
    redis: Redis,
    clock: Clock,
    make_daemon: list[Supervisor],
) -> None:
    """The venue is engaged by the POST while the action still verifies (its GET is held):
    the one-second store check sees it engaged first. The latch must still name the
    watchdog and reason that decided it, not "found in its store"."""
    with KillSwitchServer(Behaviour(hold_status_first=1, hold_status_s=1.0)) as venue:
        config = http_config(tmp_path, redis_server.url, venue)
        daemon = start(config, clock, make_daemon)
        await daemon.reconciler.restore()
        await redis.set("ticks:SPX", f"{clock.now - 30:.3f}")
        await daemon.cycle.run("w1")
        with anyio.fail_after(5):
            while not venue.active:
                await anyio.sleep(0.01)
        await anyio.sleep(0.1)  # the action's verify GET is held at the venue now
        await daemon.reconciler.refresh()  # the store check reads engaged before the action
        latch = daemon.context.runtime.engaged["kill"]
        assert latch.watchdog == "w1"
        assert latch.reason == "kill tripped by w1 — SPX age 30.0s > 10s"
        await settle(daemon)
        engaged = {"actuator": "kill", "outcome": "engaged"}
        assert metric(daemon, "supervisor_actions_total", **engaged) == 1
        assert daemon.context.runtime.engaged["kill"].watchdog == "w1"
        assert not daemon.context.runtime.ordered


async def test_a_failing_kill_is_reported_at_its_level_at_once(
    tmp_path: Path,
    redis_server: RedisServer,
    redis: Redis,
    clock: Clock,
    make_daemon: list[Supervisor],
) -> None:
    """The venue answers 500 to every attempt; the action retries for `retry_for` (2 s).
    Long before that, the decided level is in the state, STATUS and metrics, as ordered and
    failing, and health names the failing action."""
    with KillSwitchServer(Behaviour(fail_first=10**6)) as venue:
        config = http_config(tmp_path, redis_server.url, venue)
        daemon = start(config, clock, make_daemon)
        await daemon.reconciler.restore()
        await redis.set("ticks:SPX", f"{clock.now - 30:.3f}")
        await daemon.cycle.run("w1")  # returns once the first request is on its way
        assert trading(daemon) is TradingState.FLATTEN  # ordered, from the decision on
        assert metric(daemon, "supervisor_trading_state") == 3
        assert metric(daemon, "supervisor_decision_unconfirmed") == 1
        with anyio.fail_after(1.0):  # the first attempt's 500, not retry_for's end
            while metric(daemon, "supervisor_action_failing", actuator="kill") != 1:
                await anyio.sleep(0.01)
            while "FAILING" not in await published(redis, "reason"):
                await anyio.sleep(0.01)
        assert await published(redis, "trading_state") == "FLATTEN"
        summary = daemon.context.runtime.summary
        assert summary is not None
        line = summary.status_line()
        assert line.startswith("FLATTEN: kill ordered by w1, FAILING"), line
        assert "DEGRADED: action kill: failing" in line
        assert "kill" not in daemon.context.runtime.engaged  # nothing confirmed it


async def test_a_restart_between_the_reset_and_the_release_still_waits_for_the_venue(
    tmp_path: Path,
    redis_server: RedisServer,
    redis: Redis,
    clock: Clock,
    server: KillSwitchServer,
    make_daemon: list[Supervisor],
) -> None:
    config = http_config(tmp_path, redis_server.url, server)
    daemon = start(config, clock, make_daemon)
    await daemon.reconciler.restore()
    await run_w1(daemon, redis, clock, tick_age_s=30)
    assert server.active and "kill" in daemon.context.runtime.engaged
    await run_w1(daemon, redis, clock, tick_age_s=0)
    await run_w1(daemon, redis, clock, tick_age_s=0)
    await reset(config, "kill")
    await housekeeping(daemon, clock)
    assert WAITING in await published(redis, "reason")

    restarted = start(config, clock, make_daemon)  # the same state_dir and Redis
    await restarted.reconciler.restore()
    await housekeeping(restarted, clock, passes=2)
    assert "kill" not in restarted.context.runtime.engaged
    assert trading(restarted) is TradingState.FLATTEN  # the venue's truth...
    assert WAITING in await published(redis, "reason")  # ...and why
    server.release()
    await housekeeping(restarted, clock, passes=3)
    assert trading(restarted) is TradingState.ACTIVE
    assert not active(server) and server.activations == 1  # never engaged again on its own


DEADMAN = """
[actuators.breaker]
kind = "redis_breaker"
level = "reduce_only"

[actuators.cancel_on_disconnect]
kind = "deadman"
url = "{url}"
"""


async def test_a_deadman_stops_beating_on_a_trip_and_beats_again_after_the_reset(
    tmp_path: Path,
    redis_server: RedisServer,
    redis: Redis,
    clock: Clock,
    server: KillSwitchServer,
    make_daemon: list[Supervisor],
) -> None:
    path = tmp_path / "supervisor.toml"
    actuator = DEADMAN.format(url=server.base_url + "/cancel-after")
    text = config_text(tmp_path, redis_server.url, actuator, "breaker")
    path.write_text(text, encoding="utf-8")
    daemon = start(path, clock, make_daemon)
    await daemon.reconciler.restore()

    def beats() -> int:
        return len(server.requests("/cancel-after"))

    await run_w1(daemon, redis, clock, tick_age_s=0)
    await housekeeping(daemon, clock, passes=3)
    assert beats() == 3
    await run_w1(daemon, redis, clock, tick_age_s=30)  # the breaker trips: the beats stop
    await housekeeping(daemon, clock, passes=3)
    assert beats() == 3 and trading(daemon) is TradingState.REDUCE_ONLY
    await run_w1(daemon, redis, clock, tick_age_s=0)
    await run_w1(daemon, redis, clock, tick_age_s=0)
    await housekeeping(daemon, clock, passes=2)
    assert beats() == 3  # the latch holds
    await reset(path, "breaker")
    await housekeeping(daemon, clock, passes=3)  # the reset seen, then beating again
    assert trading(daemon) is TradingState.ACTIVE
    assert beats() >= 5
    before = beats()
    await run_w1(daemon, redis, clock, tick_age_s=30)  # a new fault: the beats stop again
    await housekeeping(daemon, clock, passes=2)
    assert beats() == before and trading(daemon) is TradingState.REDUCE_ONLY

"""The flight recorder in the daemon, and replay against what the daemon did: an in-process
daemon (real Redis, injected clock) runs through injected faults, then a replay of its
recording must take the same decisions as its audit trail holds (watchdog, severity,
actuators, incident boundaries, times within one interval); a candidate config's replay
says which trips it gains, loses or moves."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from supervisor.cli import main
from supervisor.config.loading import load_config
from supervisor.daemon import Supervisor
from supervisor.kinds import kind_gauges
from supervisor.model import Status
from supervisor.policy import PolicyState
from supervisor.publish.audit.kinds import AuditKind
from supervisor.publish.audit.read import TrailReader
from supervisor.publish.metrics import Metrics
from supervisor.recorder.diff import trips_diff
from supervisor.recorder.recording import open_recording
from supervisor.recorder.replay import Replay
from testbed.config_blocks import BREAKER, supervisor_tables, ticks_watchdog
from testbed.redis_server import RedisServer
from tests.integration.test_daemon_logic import Clock, settle

pytestmark = pytest.mark.anyio


def ticks(breach: str, key: str) -> str:
    """The watchdog under replay: three instruments, warned at 4 s, cleared after 3 checks."""
    return ticks_watchdog(
        name="ticks",
        key=key,
        instruments=["SPX", "ES", "NQ"],
        warn="4s",
        breach=breach,
        interval="1s",
        extra="clear_after = 3\non_warn = []",
    )


def write(path: Path, redis_url: str, breach: str = "8s", key: str = "ticks:{instrument}") -> Path:
    tables = supervisor_tables(
        path.parent / "state", redis_url, instance_id="sup-replay", namespace="rep"
    )
    text = tables + BREAKER + ticks(breach, key)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def config_path(tmp_path: Path, redis_server: RedisServer) -> Path:
    return write(tmp_path / "supervisor.toml", redis_server.url)


@pytest.fixture
async def daemon(config_path: Path, redis: Redis) -> AsyncIterator[tuple[Supervisor, Clock]]:
    clock = Clock()
    metrics = Metrics(CollectorRegistry(), kind_gauges=kind_gauges())
    supervisor = Supervisor(load_config(config_path), config_path, metrics=metrics, clock=clock)
    yield supervisor, clock
    await settle(supervisor)
    supervisor.context.recorder.close()
    await supervisor.context.assembly.close()
    supervisor.context.notifier.close()


# Per second: which instruments stop ticking. SPX stalls for 20 s (warn, breach, trip,
# clear), later NQ's key disappears (UNKNOWN) and ES stalls for 15 s (a second trip).
def stalled(second: int) -> set[str]:
    out = set()
    if 10 <= second < 30:
        out.add("SPX")
    if 50 <= second < 65:
        out.add("ES")
    return out


async def drive(
    supervisor: Supervisor, clock: Clock, redis: Redis, seconds: int
) -> list[tuple[float, PolicyState]]:
    states = []
    for second in range(seconds):
        clock.now += 1.0
        for name in ("SPX", "ES", "NQ"):
            if name not in stalled(second):
                await redis.set(f"ticks:{name}", f"{clock.now - 0.25:.3f}")
        if second == 40:
            await redis.delete("ticks:NQ")
        if second == 44:
            await redis.set("ticks:NQ", f"{clock.now:.3f}")
        await supervisor.cycle.run("ticks")
        await settle(supervisor)
        states.append((clock.now, supervisor.context.runtime.policy["ticks"]))
    return states


def incidents(states: list[tuple[float, PolicyState]]) -> list[tuple[float, float | None]]:
    """(opened, cleared) per incident, from the daemon's own policy states."""
    out: list[tuple[float, float | None]] = []
    previous = PolicyState()
    for at, state in states:
        if previous.incident is None and state.incident is not None:
            out.append((at, None))
        if previous.incident is not None and state.incident is None:
            out[-1] = (out[-1][0], at)
        previous = state
    return out


async def test_a_replay_with_the_recorded_config_takes_the_daemons_decisions(
    daemon: tuple[Supervisor, Clock], redis: Redis, config_path: Path
) -> None:
    supervisor, clock = daemon
    started = clock.now
    states = await drive(supervisor, clock, redis, 80)
    supervisor.context.recorder.close()
    state_dir = config_path.parent / "state"

    reader = TrailReader(state_dir, redis, None, "rep")
    trail = [e.event for e in await reader.read(started - 1) if e.event.kind is AuditKind.DECISION]
    await reader.close()
    recording = open_recording(state_dir / "recorder")
    timeline = Replay(None).run(recording, None, None)

    assert recording.problems == []
    assert timeline.runs == 80
    assert len(trail) == 2  # two trips: SPX, then ES (WARN has no actuators: no decision)
    assert len(timeline.decisions) == len(trail)
    for audited, replayed in zip(trail, timeline.decisions, strict=True):
        assert replayed.watchdog == audited.watchdog == "ticks"
        assert replayed.severity is Status.BREACH and audited.outcome == "breach"
        assert list(replayed.actuators) == audited.detail["actuators"] == ["breaker"]
        assert abs(replayed.at - audited.at) <= 1.0
    opened = [(e.at) for e in timeline.events if e.what == "opened"]
    cleared = [(e.at) for e in timeline.events if e.what == "cleared"]
    daemon_incidents = incidents(states)
    assert len(daemon_incidents) == len(opened) == len(cleared)
    for (d_open, d_clear), r_open, r_clear in zip(daemon_incidents, opened, cleared, strict=True):
        assert abs(d_open - r_open) <= 1.0
        assert d_clear is not None and abs(d_clear - r_clear) <= 1.0


async def test_a_candidate_config_replay_says_what_it_changes(
    daemon: tuple[Supervisor, Clock],
    redis: Redis,
    config_path: Path,
    tmp_path: Path,
    redis_server: RedisServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    supervisor, clock = daemon
    await drive(supervisor, clock, redis, 80)
    supervisor.context.recorder.close()
    recording_dir = config_path.parent / "state" / "recorder"

    looser = load_config(write(tmp_path / "looser.toml", redis_server.url, breach="12s"))
    recorded = Replay(None).run(open_recording(recording_dir), None, None)
    replayed = Replay(looser).run(open_recording(recording_dir), None, None)
    changes = {c.kind: c for c in trips_diff(recorded, replayed)}
    # SPX stalls for 20 s: still trips, 4 s later; ES stalls for 15 s: trips later too
    assert set(changes) == {"later"}
    assert all(c.kind in ("later",) for c in trips_diff(recorded, replayed))
    later = [c for c in trips_diff(recorded, replayed) if c.kind == "later"]
    assert len(later) == 2
    for change in later:
        assert change.before is not None and change.after is not None
        assert change.after - change.before == pytest.approx(4.0, abs=1.0)

    stricter = load_config(write(tmp_path / "strict.toml", redis_server.url, breach="20s"))
    kinds = [
        c.kind
        for c in trips_diff(
            recorded, Replay(stricter).run(open_recording(recording_dir), None, None)
        )
    ]
    assert sorted(kinds) == ["lost", "lost"]  # no stall lasts 20 s

    other = load_config(write(tmp_path / "other.toml", redis_server.url, key="md:{instrument}"))
    timeline = Replay(other).run(open_recording(recording_dir), None, None)
    assert "ticks" in timeline.unreplayable and not timeline.decisions

    code = main(
        ["replay", "--config", str(tmp_path / "looser.toml"), "--recording", str(recording_dir)]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "0 trips gained, 0 trips lost, 0 trips earlier, 2 trips later" in out
    assert "later by 4s" in out or "later by" in out

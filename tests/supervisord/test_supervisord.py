"""The daemon under a real supervisord, as a desk without systemd runs it: the program section
shipped in deploy/supervisord/, a real Redis, supervisorctl. supervisord puts SUPERVISOR_ENABLED,
SUPERVISOR_PROCESS_NAME, SUPERVISOR_GROUP_NAME and SUPERVISOR_SERVER_URL into the daemon's
environment: it must start anyway, protect, log one line an event, stop cleanly with the
in-flight grace, and come back from `supervisorctl restart` with its latch."""

from __future__ import annotations

import configparser
import json
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis

from supervisor.constants import SHUTDOWN_GRACE_S
from testbed import REPO_ROOT
from testbed.daemon_process import cli, write_config
from testbed.http_server import Answer, HttpServer
from testbed.redis_server import RedisServer
from testbed.supervisord import PROGRAM, PROGRAM_FILE, Supervisord, program_section
from testbed.tick_feed import TickFeed
from testbed.waiting import wait_until

pytestmark = pytest.mark.slow

SUPERVISORD_VARIABLES = (
    "SUPERVISOR_ENABLED",
    "SUPERVISOR_GROUP_NAME",
    "SUPERVISOR_PROCESS_NAME",
    "SUPERVISOR_SERVER_URL",
)
# A check that is still running when SIGTERM comes: it answers after 6 s and gives up at 5 s,
# so it is cancelled once the grace is over (tests/integration/test_daemon.py, the same
# shutdown under systemd's SIGTERM).
SLOW_HEALTH = """
[[watchdogs]]
name = "slow_health"
kind = "http_health"
url = "{url}"
interval = "6s"
timeout = "5s"
"""
# What the daemon writes: time, level, logger, message; one line each.
LOG_LINE = re.compile(
    r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) [\w.]+: \S"
)


@pytest.fixture
def supervisord_installed() -> None:
    if shutil.which("supervisord") is None or shutil.which("supervisorctl") is None:
        pytest.skip("supervisord is not installed: scripts/bootstrap installs it (apt supervisor)")


@pytest.fixture
def under_supervisord(
    tmp_path: Path,
    supervisord_installed: None,
    redis_server: RedisServer,
    sync_redis: Redis,
    http_server: HttpServer,
) -> Iterator[tuple[Supervisord, Path]]:
    http_server.answer("/ready", Answer(body=b"{}", delay_s=6.0))
    config, _ = write_config(
        tmp_path, redis_server.url, extra=SLOW_HEALTH.format(url=http_server.url("/ready"))
    )
    (tmp_path / "state").mkdir()  # no StateDirectory= without systemd: the desk makes it
    manager = Supervisord(tmp_path, config)
    try:
        yield manager, config
    finally:
        code = manager.stop()
        print(f"--- supervisord.log\n{manager.log()}\n--- daemon\n{manager.output()}")
        assert code == 0


def breaker(client: Redis) -> dict[str, object] | None:
    raw = client.get("circuit_breaker:state")
    return json.loads(raw) if raw else None


def test_the_shipped_program_section_is_what_runs(tmp_path: Path) -> None:
    """The test changes only the paths; the rest is the file as shipped."""
    section = configparser.ConfigParser(inline_comment_prefixes=(";",))
    section.read_string(program_section(tmp_path / "s.toml", tmp_path / "d.log"))
    program = section[f"program:{PROGRAM}"]
    assert program["command"].endswith(f"trading-supervisor run --config {tmp_path}/s.toml")
    assert program["stopsignal"] == "TERM"
    assert float(program["stopwaitsecs"]) > SHUTDOWN_GRACE_S + 5  # the grace, and a margin
    assert program["redirect_stderr"] == "true"
    assert program["autorestart"] == "unexpected"
    assert program["exitcodes"].split(",") == ["0", "78"]
    assert "user" not in program  # commented out: the test runs as whoever runs it
    assert PROGRAM_FILE.read_text(encoding="utf-8").count("[program:") == 1


def test_the_docs_show_the_shipped_section() -> None:
    """The example in docs/operations.md is the file without its comments: the two cannot
    drift apart."""
    shipped = [
        line
        for line in PROGRAM_FILE.read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("; ")
    ]
    page = (REPO_ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    assert "```ini\n" + "\n".join(shipped) + "\n```" in page


@pytest.mark.timeout(120)
def test_protects_logs_stops_and_restarts_with_its_latch_under_supervisord(
    under_supervisord: tuple[Supervisord, Path],
    redis_server: RedisServer,
    sync_redis: Redis,
    http_server: HttpServer,
) -> None:
    manager, config = under_supervisord
    feed = TickFeed(redis_server.url).start()
    try:
        manager.wait_running()
        wait_until(lambda: sync_redis.exists("sup:heartbeat") == 1, 10, "the heartbeat")
        first_pid = manager.pid()

        # It protects: the feed goes stale, the breaker trips.
        time.sleep(1.0)
        assert breaker(sync_redis) is None
        last_tick = feed.stop()
        wait_until(lambda: breaker(sync_redis) is not None, 10, "the breaker to trip")
        tripped = breaker(sync_redis)
        assert tripped is not None and tripped["state"] == "TRIPPED"
        print(f"tripped {float(str(tripped['tripped_at'])) - last_tick:.2f}s after the last tick")
        state = manager.directory / "state" / "engaged.json"
        wait_until(state.exists, 5, "the persisted latch")

        # `supervisorctl restart` with a healthy feed again: back with the latch, not re-armed.
        feed = TickFeed(redis_server.url).start()
        restarted = manager.ctl("restart", PROGRAM)
        assert restarted.returncode == 0, restarted.stdout + restarted.stderr
        assert manager.state() == "RUNNING" and manager.pid() != first_pid
        wait_until(
            lambda: "restored trading_state=REDUCE_ONLY from state_dir" in manager.output(),
            10,
            "the restored latch",
        )
        wait_until(
            lambda: sync_redis.hget("sup:state", "trading_state") == b"REDUCE_ONLY",
            10,
            "REDUCE_ONLY published after the restart",
        )
        # A command run beside it with supervisord's variables (from a program's shell).
        beside = {name: "x" for name in SUPERVISORD_VARIABLES}
        status = cli("status", "--config", str(config), extra_env=beside)
        assert status.returncode == 0 and "REDUCE_ONLY" in status.stdout, status.stderr
        assert breaker(sync_redis) == tripped  # nothing re-armed it

        # `supervisorctl signal HUP`: systemctl reload's SIGHUP, the config read again.
        hup = manager.ctl("signal", "HUP", PROGRAM)
        assert hup.returncode == 0, hup.stdout + hup.stderr
        wait_until(lambda: f"reloaded config from {config}" in manager.output(), 10, "reload")

        # `supervisorctl stop` while a check is in flight: the grace, then a clean exit 0.
        seen = http_server.counts["/ready"]
        wait_until(lambda: http_server.counts["/ready"] > seen, 10, "a slow check in flight")
        started = time.monotonic()
        stopped = manager.ctl("stop", PROGRAM)
        stop_took = time.monotonic() - started
        print(f"supervisorctl stop: {stop_took:.2f}s (grace {SHUTDOWN_GRACE_S}s)")
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        assert manager.state() == "STOPPED"
    finally:
        feed.stop()
    log = manager.log()
    assert log.count(f"stopped: {PROGRAM} (exit status 0)") == 2  # the restart, the stop
    assert "SIGKILL" not in log and "unexpected" not in log
    assert SHUTDOWN_GRACE_S <= stop_took < 15  # waited the grace; never reached stopwaitsecs

    output = manager.output()
    assert output.count("received SIGTERM: stopping") == 2
    assert "stopped (1 in-flight checks/actions cancelled)" in output
    assert "watchdog=slow_health check cancelled by the shutdown" in output
    assert "trading_state=REDUCE_ONLY (was ACTIVE)" in output
    lines = output.splitlines()
    assert all(LOG_LINE.match(line) for line in lines), "\n".join(
        line for line in lines if not LOG_LINE.match(line)
    )
    ignored = [line for line in lines if "so not settings; ignored" in line]
    assert len(ignored) == 2  # once at each start, naming supervisord's variables
    assert all(f"environment {', '.join(SUPERVISORD_VARIABLES)}:" in line for line in ignored)
    assert "unix://" not in "".join(ignored)  # names, never values


def test_a_bad_config_exits_78_and_is_not_restarted_for_ever(
    tmp_path: Path, supervisord_installed: None, redis_server: RedisServer
) -> None:
    """Exit 78 within startsecs is a failed start to supervisord: retried startretries=3 times,
    then FATAL. On a loaded host the refusal may come later than startsecs: then exitcodes=0,78
    make it an expected exit, EXITED and not restarted. Either way it stays stopped, as
    systemd's RestartPreventExitStatus=78 does, with the reason in the daemon's log."""
    config, _ = write_config(tmp_path, redis_server.url)
    config.write_text(config.read_text().replace('breach = "1500ms"', 'breach = "soon"'))
    manager = Supervisord(tmp_path, config)
    try:
        wait_until(lambda: manager.state() in ("FATAL", "EXITED"), 40, f"{PROGRAM} to give up")
        attempts = manager.log().count(f"spawned: '{PROGRAM}'")
        time.sleep(3.0)  # longer than supervisord's next backoff: no further attempt
        assert manager.log().count(f"spawned: '{PROGRAM}'") == attempts
    finally:
        code = manager.stop()
        print(f"--- supervisord.log\n{manager.log()}\n--- daemon\n{manager.output()}")
    assert code == 0
    assert 1 <= attempts <= 4  # the start and at most startretries=3 retries
    exits = re.findall(rf"exited: {PROGRAM} \(exit status (\d+);", manager.log())
    assert exits == ["78"] * attempts
    refusal = "watchdogs[0] (spx_ticks).breach: invalid duration 'soon'"
    assert manager.output().count(refusal) == attempts

"""The CLI as an operator runs it, as real subprocesses: Redis unreachable is one line on
stderr and the documented exit code, never a traceback; a reader that closes the pipe early
(`status | head -1`) ends the command quietly."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from redis import Redis

from supervisor.publish.audit import AuditEvent, AuditKind
from supervisor.publish.audit.event import stream_fields
from testbed import REPO_ROOT
from testbed.daemon_process import cli, write_config
from testbed.redis_server import RedisServer
from testbed.waiting import free_port

REASON = "operator drill: Redis is down, what does the CLI say"
EX_PIPE = 141


@pytest.fixture
def down_config(tmp_path: Path) -> Path:
    """A config whose Redis (with a password in its URL) listens nowhere."""
    config, _ = write_config(tmp_path, f"redis://:hunter2@127.0.0.1:{free_port()}/0")
    return config


def assert_said_in_one_line(stderr: str) -> str:
    assert "Traceback" not in stderr
    assert "hunter2" not in stderr
    said = [line for line in stderr.splitlines() if line.startswith("trading-supervisor: ")]
    assert len(said) == 1, stderr
    others = [line for line in stderr.splitlines() if line not in said]
    assert all(" WARNING supervisor." in line for line in others), stderr  # log lines only
    return said[0]


def test_reset_with_redis_down_names_it_in_one_line(down_config: Path) -> None:
    result = cli("reset", "breaker", "--reason", REASON, "--config", str(down_config))
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    line = assert_said_in_one_line(result.stderr)
    assert line.startswith("trading-supervisor: refused: Redis: ConnectionError")
    assert line.endswith("nothing was released")  # what the operator must know first


@pytest.mark.parametrize("verb", ["trip", "kill"])
def test_trip_and_kill_with_redis_down_say_what_failed_in_one_line(
    down_config: Path, verb: str
) -> None:
    if verb == "kill":
        with down_config.open("a", encoding="utf-8") as config:
            config.write('\n[actuators.halt]\nkind = "redis_flag"\nlevel = "halted"\nkey = "h"\n')
    result = cli(verb, "--reason", REASON, "--config", str(down_config))
    assert result.returncode == 1
    line = assert_said_in_one_line(result.stderr)
    assert ": FAILED: ConnectionError: " in line


def test_status_with_redis_down_is_one_line_and_exit_2(down_config: Path) -> None:
    result = cli("status", "--config", str(down_config))
    assert result.returncode == 2
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stdout.startswith("cannot read the published state: redis: ConnectionError")
    assert result.stdout.count("\n") == 1


def test_events_with_redis_down_is_one_note(down_config: Path) -> None:
    result = cli("events", "--config", str(down_config))
    assert result.returncode == 0
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("note: redis: ConnectionError")
    assert result.stderr.count("\n") == 1


def test_check_with_redis_down_is_unknown(down_config: Path) -> None:
    result = cli("check", "--config", str(down_config))
    assert result.returncode == 3
    assert "Traceback" not in result.stderr


def test_config_show_hides_url_credentials(tmp_path: Path) -> None:
    config, _ = write_config(tmp_path, "redis://:SECRET456@127.0.0.1:6379/0")
    with config.open("a", encoding="utf-8") as file:
        file.write(
            '\n[[watchdogs]]\nname = "api"\nkind = "http_health"\n'
            'url = "http://user:SECRET456@127.0.0.1:9/health?token=SECRET123"\n'
        )
    result = cli("config", "show", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert "SECRET" not in result.stdout
    assert "token=**********" in result.stdout


# --- a reader that goes away ------------------------------------------------------------------


def run_into_a_closed_pipe(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI with stdout a pipe whose reading end is already closed: its first write
    fails, exactly as when `| head -1` has exited."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(
            [sys.executable, "-m", "supervisor", *args],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=30,
            cwd=REPO_ROOT,
            check=False,
        )
    finally:
        os.close(write_end)


def shell_pipe(command: str) -> subprocess.CompletedProcess[str]:
    """`command` in bash; stderr gets the supervisor's exit status as `rc=N` at the end."""
    script = f'{command}; echo "rc=${{PIPESTATUS[0]}}" >&2'
    return subprocess.run(
        ["bash", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
        check=False,
    )


def supervisor_command(*args: str) -> str:
    return " ".join([sys.executable, "-m", "supervisor", *args])


def test_status_into_a_closed_pipe_ends_quietly(
    tmp_path: Path, redis_server: RedisServer, sync_redis: Redis
) -> None:
    config, _ = write_config(tmp_path, redis_server.url)
    result = run_into_a_closed_pipe("status", "--config", str(config))
    assert result.returncode == EX_PIPE
    assert result.stderr == ""


def test_status_piped_to_head_ends_quietly(
    tmp_path: Path, redis_server: RedisServer, sync_redis: Redis
) -> None:
    config, _ = write_config(tmp_path, redis_server.url)
    result = shell_pipe(supervisor_command("status", "--config", str(config)) + " | head -1")
    assert result.stdout.startswith("supervisor:")
    assert result.stdout.count("\n") == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1] in ("rc=2", f"rc={EX_PIPE}")  # 2: no live supervisor


def test_events_piped_to_head_ends_quietly(
    tmp_path: Path, redis_server: RedisServer, sync_redis: Redis
) -> None:
    config, _ = write_config(tmp_path, redis_server.url)
    with sync_redis.pipeline(transaction=False) as pipe:  # far more than a pipe buffer holds
        for n in range(3000):
            event = AuditEvent.new(AuditKind.MANUAL, actor="alice", reason=f"drill {n} " * 8)
            pipe.xadd("sup:events", stream_fields(event))  # type: ignore[arg-type]
        pipe.execute()
    result = shell_pipe(supervisor_command("events", "--config", str(config)) + " | head -1")
    assert result.stdout.count("\n") == 1 and "manual actor=alice" in result.stdout
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [f"rc={EX_PIPE}"]


def test_events_into_a_closed_pipe_ends_quietly(
    tmp_path: Path, redis_server: RedisServer, sync_redis: Redis
) -> None:
    config, _ = write_config(tmp_path, redis_server.url)
    event = AuditEvent.new(AuditKind.MANUAL, actor="alice", reason=str(uuid.uuid4()))
    sync_redis.xadd("sup:events", stream_fields(event))  # type: ignore[arg-type]
    result = run_into_a_closed_pipe("events", "--config", str(config))
    assert result.returncode == EX_PIPE
    assert result.stderr == ""

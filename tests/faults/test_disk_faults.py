"""state_dir on a full disk: the daemon says so, keeps protecting, and recovers.

The daemon runs in a mount namespace of its own (`unshare -m`) where state_dir is a 64 KiB
tmpfs, so filling it touches nothing else on the machine; the test reaches that tmpfs through
/proc/PID/root, the daemon's view of the file system.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from redis import Redis

from supervisor.constants import AUDIT_OUTBOX_FILE
from supervisor.latch import ENGAGED_FILE
from testbed.config_blocks import ticks_watchdog
from testbed.daemon_process import Daemon
from testbed.notify_socket import NotifySocket
from testbed.redis_server import RedisServer
from testbed.tick_feed import TickFeed
from testbed.waiting import wait_until
from tests.faults.stack import (
    BREAKER,
    BREAKER_KEY,
    assert_no_crash,
    key,
    statuses,
    write_config,
)

pytestmark = pytest.mark.slow

TMPFS_SIZE = "64k"
MOUNT_THEN_EXEC = 'mount -t tmpfs -o size={size} tmpfs "$0" && exec "$@"'
TICKS = ticks_watchdog(warn="300ms", breach="500ms", interval="250ms")


def private_tmpfs(directory: Path) -> list[str]:
    """A command prefix: a private mount namespace with a small tmpfs on `directory`."""
    script = MOUNT_THEN_EXEC.format(size=TMPFS_SIZE)
    return ["unshare", "-m", "--propagation", "private", "sh", "-c", script, str(directory)]


def mount_problem(directory: Path) -> str | None:
    """Why a private tmpfs cannot be mounted here (not root, no CAP_SYS_ADMIN...); or None."""
    directory.mkdir(parents=True, exist_ok=True)
    try:
        probe = subprocess.run(
            [*private_tmpfs(directory), "true"], capture_output=True, text=True, timeout=10
        )
    except OSError as exc:
        return str(exc)
    return None if probe.returncode == 0 else probe.stderr.strip() or f"exit {probe.returncode}"


def fill(view: Path) -> Path:
    """Fill the file system of `view` (a directory) to the last byte; return the filler."""
    filler = view / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 1024)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC, exc
    finally:
        os.close(fd)
    return filler


def test_state_dir_full_degrades_protection_continues_and_recovers(
    tmp_path: Path, private_redis: RedisServer, notify_socket: NotifySocket
) -> None:
    state_dir = tmp_path / "state"
    problem = mount_problem(state_dir)
    if problem is not None:
        pytest.skip(f"cannot mount a private tmpfs for state_dir: {problem}")
    setup = write_config(tmp_path, private_redis.url, BREAKER + TICKS, state_dir=state_dir)
    feed = TickFeed(private_redis.url).start()
    daemon = Daemon(setup.config, notify_socket, wrapper=private_tmpfs(state_dir))
    client = Redis.from_url(private_redis.url, socket_timeout=1)
    try:
        notify_socket.wait_for("STATUS=ACTIVE: 1 of 1 watchdogs OK", timeout_s=15)
        view = Path(f"/proc/{daemon.process.pid}/root") / state_dir.relative_to("/")
        assert not (state_dir / ENGAGED_FILE).exists()  # the host's directory stays empty
        filler = fill(view)
        full_at = time.time()
        _, status = notify_socket.wait_for("DEGRADED: state_dir", timeout_s=5, after=full_at)
        degraded_in = time.time() - full_at
        assert f"cannot write {state_dir}: No space left on device" in status

        last_tick = feed.stop()  # protection goes on: the breaker still trips
        wait_until(lambda: client.get(BREAKER_KEY) is not None, 10, "the trip")
        tripped_in = float(json.loads(client.get(BREAKER_KEY) or "{}")["tripped_at"]) - last_tick
        wait_until(
            lambda: client.hget(key("state"), "trading_state") == b"REDUCE_ONLY", 5, "published"
        )
        wait_until(lambda: client.hexists(key("engaged"), "breaker"), 5, "the latch in Redis")
        log = daemon.log()
        assert "audit: cannot write the outbox" in log  # events only in journal and stream
        assert "cannot write" in log and ENGAGED_FILE in log

        filler.unlink()
        freed_at = time.time()
        wait_until(lambda: "state_dir: writable again" in daemon.log(), 5, "the recovery")
        recovered_in = time.time() - freed_at
        wait_until(lambda: "DEGRADED" not in statuses(notify_socket)[-1], 5, "healthy STATUS")
        assert statuses(notify_socket)[-1].startswith("REDUCE_ONLY: breaker tripped")
        wait_until(lambda: (view / ENGAGED_FILE).exists(), 5, "the latch saved once it can be")
        print(
            f"state_dir full: DEGRADED after {degraded_in:.2f}s; trip {tripped_in:.2f}s after"
            f" the last tick; writable again, recovered after {recovered_in:.2f}s"
        )
        assert "breaker" in json.loads((view / ENGAGED_FILE).read_text())
        assert (view / AUDIT_OUTBOX_FILE).exists()  # events find the outbox again
        assert_no_crash(daemon)
    finally:
        feed.stop()
        client.close()
        assert daemon.terminate() == 0

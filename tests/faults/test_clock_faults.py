"""The wall clock stepped under the daemon: forward an hour, back, back again.

libfaketime (LD_PRELOAD) fakes CLOCK_REALTIME for the daemon process only, from a timestamp
file re-read on every call (FAKETIME_NO_CACHE=1), so the test steps the daemon's wall clock
while it runs; CLOCK_MONOTONIC is left alone (FAKETIME_DONT_FAKE_MONOTONIC=1), as a real NTP
step or `date -s` leaves it. The feed and Redis keep the real time: fresh ticks must stay
fresh whatever the daemon's system clock says.

Checked with libfaketime 0.9.10 and CPython 3.11: time.time() and datetime.now() follow the
file, time.monotonic() does not. One limit: with FAKETIME_DONT_FAKE_MONOTONIC, time.sleep()
fails with EINVAL (CPython sleeps with clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME), which
libfaketime mistranslates). The daemon never calls time.sleep (asyncio and threading waits are
unaffected); should it ever, this test shows it as a crash.
"""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from redis import Redis

from testbed.config_blocks import ticks_watchdog
from testbed.daemon_process import Daemon, cli
from testbed.notify_socket import NotifySocket
from testbed.redis_server import RedisServer
from testbed.tick_feed import TickFeed
from testbed.waiting import wait_until
from tests.faults.stack import (
    BREAKER,
    BREAKER_KEY,
    assert_no_crash,
    key,
    longest_keepalive_gap,
    write_config,
)

pytestmark = pytest.mark.slow

LIBFAKETIME = next(iter(sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1"))), None)
TICKS = ticks_watchdog()
HOUR_S = 3600.0
REASON = "clock drill: releasing the breaker after a clock step"


def faketime_env(offset_file: Path) -> dict[str, str]:
    assert LIBFAKETIME is not None
    return {
        "LD_PRELOAD": LIBFAKETIME,
        "FAKETIME_TIMESTAMP_FILE": str(offset_file),
        "FAKETIME_NO_CACHE": "1",  # re-read the file on every call: steps take effect at once
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",  # a real step leaves the monotonic clock alone
    }


def step_to(offset_file: Path, offset_s: float) -> None:
    """The faked wall clock is the real one plus `offset_s` from now on."""
    offset_file.write_text(f"{offset_s:+.0f}\n")


PROBE = "import time; print(time.time(), time.monotonic())"


def faketime_problem(directory: Path) -> str | None:
    """Why libfaketime cannot step this Python's wall clock alone; None when it can."""
    if LIBFAKETIME is None:
        return "libfaketime is not installed (scripts/bootstrap installs it)"
    offset_file = directory / "probe-offset"
    step_to(offset_file, HOUR_S)
    env = {**os.environ, **faketime_env(offset_file)}
    before = time.monotonic()
    probe = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=30
    )
    if probe.returncode != 0:
        return f"python under libfaketime failed: {probe.stderr.strip()[-300:]}"
    wall, mono = (float(part) for part in probe.stdout.split())
    if abs(wall - time.time() - HOUR_S) > 60:
        return f"time.time() was not moved by an hour ({wall - time.time():+.0f}s)"
    if not before - 1 <= mono <= time.monotonic() + 1:
        return "time.monotonic() was faked too"
    return None


def last_run(client: Redis) -> float:
    return float(client.hget(key("watchdog:spx_ticks"), "last_run") or 0)


def breaker_state(client: Redis) -> str | None:
    raw = client.get(BREAKER_KEY)
    return None if raw is None else str(json.loads(raw)["state"])


def test_wall_clock_stepped_forward_and_back_no_false_trip_keepalive_and_ordering(
    tmp_path: Path, private_redis: RedisServer, notify_socket: NotifySocket
) -> None:
    problem = faketime_problem(tmp_path)
    if problem is not None:
        pytest.skip(f"cannot step the daemon's clock: {problem}")
    offset_file = tmp_path / "offset"
    step_to(offset_file, 0)
    setup = write_config(tmp_path, private_redis.url, BREAKER + TICKS)
    feed = TickFeed(private_redis.url).start()
    daemon = Daemon(setup.config, notify_socket, extra_env=faketime_env(offset_file))
    client = Redis.from_url(private_redis.url, socket_timeout=1)
    try:
        notify_socket.wait_for("STATUS=ACTIVE: 1 of 1 watchdogs OK", timeout_s=15)
        for offset_s in (HOUR_S, 0.0, -HOUR_S):  # +1 h, then -1 h, then -1 h again
            ran_before = last_run(client)
            step_to(offset_file, offset_s)
            stepped_at = time.time()
            time.sleep(3.0)  # six watchdog intervals, three housekeeping passes
            gap = longest_keepalive_gap(notify_socket, stepped_at, time.time())
            ran = last_run(client)
            print(
                f"wall clock at {offset_s / HOUR_S:+.0f}h: longest WATCHDOG=1 gap {gap:.2f}s,"
                f" last_run advanced {ran - ran_before:.2f}s and is"
                f" {ran - time.time():+.2f}s from the real time"
            )
            assert gap < 2.5
            assert ran > ran_before
            assert abs(ran - time.time()) < 2.0  # the steady clock, not the stepped one
            assert breaker_state(client) is None  # fresh ticks never looked an hour old
        log = daemon.log()
        assert "system clock stepped by +3600" in log and "system clock stepped by -3600" in log
        assert "re-planning every job" in log
        assert "incident=" not in log

        # Engagements and resets are ordered by {ns}:seq, not by clocks: a trip by the
        # daemon (its clock an hour behind), a reset by an operator whose clock is an hour
        # ahead, then a new trip by the daemon. The reset voids the first only.
        last_tick = feed.stop()
        wait_until(lambda: breaker_state(client) == "TRIPPED", 10, "the first trip")
        tripped_after = float(json.loads(client.get(BREAKER_KEY) or "{}")["tripped_at"])
        feed = TickFeed(private_redis.url).start()
        wait_until(
            lambda: client.hget(key("watchdog:spx_ticks"), "status") == b"OK", 10, "OK again"
        )
        operator_offset = tmp_path / "operator-offset"
        step_to(operator_offset, HOUR_S)
        reset = cli(
            "reset",
            "breaker",
            "--reason",
            REASON,
            "--config",
            str(setup.config),
            extra_env=faketime_env(operator_offset),
        )
        assert reset.returncode == 0, reset.stderr
        wait_until(lambda: "released by a manual reset" in daemon.log(), 5, "the reset seen")
        feed.stop()
        wait_until(lambda: breaker_state(client) == "TRIPPED", 10, "the second trip")
        time.sleep(2.0)  # housekeeping passes: a later trip is never voided by that reset
        engaged = json.loads(client.hget(key("engaged"), "breaker") or "{}")
        reset_seq = int(client.hget(key("reset"), "breaker") or 0)
        print(
            f"first trip {tripped_after - last_tick:.2f}s after the last tick; reset seq"
            f" {reset_seq}, the later engagement seq {engaged.get('seq')}"
        )
        assert 1.5 < tripped_after - last_tick < 3.0  # ages on the steady clock
        assert breaker_state(client) == "TRIPPED"
        assert engaged["seq"] > reset_seq
        assert client.hget(key("state"), "trading_state") == b"REDUCE_ONLY"
        assert_no_crash(daemon)
    finally:
        feed.stop()
        client.close()
        assert daemon.terminate() == 0

"""A venue kill endpoint that fails in each way it can, and the daemon dying mid-action.

The endpoint is a real HTTP server (testbed/killswitch_server.py) that deduplicates by
Idempotency-Key, as a well-behaved venue does; what it received is its record.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from redis import Redis

from testbed.daemon_process import Daemon
from testbed.killswitch_server import Behaviour, KillSwitchServer
from testbed.notify_socket import NotifySocket
from testbed.redis_server import RedisServer
from testbed.waiting import free_port, wait_until
from tests.faults.stack import assert_no_crash, key, sample, scrape, write_config

pytestmark = pytest.mark.slow

KILL = """
[actuators.kill_api]
kind = "http"
level = "flatten"
url = "{activate}"
json = {{ reason = "{{reason}}", close_positions = true }}
verify = {{ url = "{status}", expect = "kill_switch_active == `true`" }}
timeout = "300ms"
retry_for = "{retry_for}"
on_failure = ["kill_flag"]

[actuators.kill_flag]
kind = "redis_flag"
level = "halted"
key = "ops:kill_switch"
value = "1"

[[watchdogs]]
name = "spx_ticks"
kind = "tick_freshness"
key = "ticks:last:{{instrument}}"
instruments = ["SPX", "ES"]
warn = "300ms"
breach = "500ms"
interval = "250ms"
trip_after = 2
on_breach = ["kill_api"]
"""
FLAG = "ops:kill_switch"


@dataclass(frozen=True)
class Venue:
    """Where the kill endpoint is, and its record when a server is there at all."""

    activate_url: str
    status_url: str
    server: KillSwitchServer | None


@contextmanager
def venue(fault: str) -> Iterator[Venue]:
    if fault == "refuses connections":
        base = f"http://127.0.0.1:{free_port()}"  # nothing listens there
        yield Venue(f"{base}/kill-switch/activate", f"{base}/status", None)
        return
    behaviours = {
        "answers 500": Behaviour(fail_first=10**6),
        "hangs past the timeout": Behaviour(hold_first=10**6, hold_s=30.0),
        "answers 200 but verify fails": Behaviour(never_confirm=True),
    }
    with KillSwitchServer(behaviours[fault]) as server:
        yield Venue(server.activate_url, server.status_url, server)


def attempts_logged(log: str) -> list[int]:
    """Requests (or verify checks) per failed engage of kill_api, from the journal's
    "action actuator=kill_api outcome=failed" lines."""
    failed = re.compile(
        r"action actuator=kill_api outcome=failed .*?"
        r"(?:failed (\d+) attempt\(s\)|not confirmed after (\d+) check)"
    )
    return [int(a or b) for a, b in failed.findall(log)]


@pytest.mark.parametrize(
    "fault",
    [
        "answers 500",
        "hangs past the timeout",
        "refuses connections",
        "answers 200 but verify fails",
    ],
)
def test_kill_endpoint_failing_is_retried_with_one_key_then_escalates(
    fault: str,
    tmp_path: Path,
    redis_server: RedisServer,
    sync_redis: Redis,
    notify_socket: NotifySocket,
) -> None:
    retry_for_s = 1.5
    with venue(fault) as kill:
        body = KILL.format(activate=kill.activate_url, status=kill.status_url, retry_for="1500ms")
        setup = write_config(tmp_path, redis_server.url, body)
        daemon = Daemon(setup.config, notify_socket)  # no ticks: the kill switch is ordered
        try:
            notify_socket.wait_for("READY=1")
            ready_at = time.time()
            wait_until(lambda: sync_redis.get(FLAG) == b"1", 15, "the escalation to kill_flag")
            escalated_in = time.time() - ready_at
            _, status = notify_socket.wait_for("| DEGRADED: ", timeout_s=5, after=ready_at)
            wait_until(lambda: len(attempts_logged(daemon.log())) >= 2, 15, "a second engage")
            metrics = scrape(setup.metrics_port)
            failed = sample(
                metrics, "supervisor_actions_total", actuator="kill_api", outcome="failed"
            )
            attempts = attempts_logged(daemon.log())
            keys = kill.server.received_keys if kill.server else []
            print(
                f"kill endpoint {fault}: escalated {escalated_in:.2f}s after READY;"
                f" attempts per engage {attempts}; {len(keys)} request(s) with"
                f" {len(set(keys))} key(s); failed={failed}"
            )
            assert status.startswith("STATUS=HALTED: kill_flag tripped by spx_ticks")
            assert "kill_api" in status.partition("| DEGRADED: ")[2]  # the failure is named
            assert "escalating: kill_api failed" in daemon.log()
            assert failed is not None and failed >= 2  # every engage that failed is counted
            assert sample(metrics, "supervisor_trading_state") == 2.0  # HALTED by the flag
            assert attempts[0] >= 2  # re-sent (or, verify failing, re-checked) within retry_for
            if kill.server is not None:
                assert len(keys) >= 2 and len(set(keys)) == 1, keys  # one incident, one key
                assert kill.server.activations <= 1
            assert escalated_in < retry_for_s + 3.0
            assert sync_redis.hget(key("state"), "kill_switch") == b"ENGAGED"
            assert_no_crash(daemon)
        finally:
            assert daemon.terminate() == 0

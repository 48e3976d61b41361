"""A venue kill endpoint that fails in each way it can, and the daemon dying mid-action.

The endpoint is a real HTTP server (testbed/killswitch_server.py) that deduplicates by
Idempotency-Key, as a well-behaved venue does; what it received is its record.
"""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from redis import Redis

from testbed.config_blocks import FAST_TICKS, http_kill, redis_flag, ticks_watchdog
from testbed.daemon_process import Daemon
from testbed.killswitch_server import Behaviour, KillSwitchServer
from testbed.notify_socket import NotifySocket
from testbed.redis_server import RedisServer
from testbed.tick_feed import TickFeed
from testbed.waiting import free_port, wait_until
from tests.faults.stack import assert_no_crash, key, sample, scrape, statuses, write_config

pytestmark = pytest.mark.slow


def kill_body(activate_url: str, status_url: str, retry_for: str) -> str:
    """The verified kill API, escalating to the Redis flag, on a stale feed."""
    api = http_kill(
        activate_url,
        status_url=status_url,
        json='{ reason = "{reason}", close_positions = true }',
        retry_for=retry_for,
        on_failure=["kill_flag"],
    )
    return api + redis_flag() + ticks_watchdog(["kill_api"], **FAST_TICKS)


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


def halted_and_degraded(notify: NotifySocket, after: float) -> str:
    """The first STATUS since `after` saying FLATTEN ordered and failing, HALTED by the
    fallback flag meanwhile, and DEGRADED."""
    for status in statuses(notify, after):
        failing = status.startswith("FLATTEN: kill_api ordered by spx_ticks, FAILING")
        if failing and "kill_flag tripped by spx_ticks" in status and "| DEGRADED: " in status:
            return status
    return ""


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
        body = kill_body(kill.activate_url, kill.status_url, retry_for="1500ms")
        setup = write_config(tmp_path, redis_server.url, body)
        daemon = Daemon(setup.config, notify_socket)  # no ticks: the kill switch is ordered
        try:
            notify_socket.wait_for("READY=1")
            ready_at = time.time()
            wait_until(lambda: sync_redis.get(FLAG) == b"1", 15, "the escalation to kill_flag")
            escalated_in = time.time() - ready_at
            # Before the escalation, STATUS may already be DEGRADED (the verify URL unread).
            wait_until(lambda: bool(halted_and_degraded(notify_socket, ready_at)), 5, "STATUS")
            status = halted_and_degraded(notify_socket, ready_at)
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
            assert "kill_api" in status.partition("| DEGRADED: ")[2]  # the failure is named
            assert "escalating: kill_api failed" in daemon.log()
            assert failed is not None and failed >= 2  # every engage that failed is counted
            assert sample(metrics, "supervisor_trading_state") == 3.0  # FLATTEN ordered, failing
            assert sample(metrics, "supervisor_action_failing", actuator="kill_api") == 1.0
            assert attempts[0] >= 2  # re-sent (or, verify failing, re-checked) within retry_for
            if kill.server is not None:
                assert len(keys) >= 2 and len(set(keys)) == 1, keys  # one incident, one key
                assert kill.server.activations <= 1
            assert escalated_in < retry_for_s + 3.0
            assert sync_redis.hget(key("state"), "kill_switch") == b"ENGAGED"
            assert_no_crash(daemon)
        finally:
            assert daemon.terminate() == 0


def kill_mid_action(activate_url: str, status_url: str, timeout: str) -> str:
    """The verified kill API, retried for long, on a stale feed."""
    api = http_kill(activate_url, status_url=status_url, timeout=timeout, retry_for="30s")
    return api + ticks_watchdog(["kill_api"], **FAST_TICKS)


def restart(setup_config: Path, notify: NotifySocket, name: str) -> Daemon:
    """The daemon again with the same config and state_dir, logging to its own file."""
    config = setup_config.with_name(f"{name}.toml")
    config.write_text(setup_config.read_text())
    return Daemon(config, notify)


def sigkill(daemon: Daemon) -> None:
    daemon.process.send_signal(signal.SIGKILL)
    daemon.kill()


def test_sigkilled_while_the_venue_holds_the_kill_request_one_key_one_activation(
    tmp_path: Path, redis_server: RedisServer, sync_redis: Redis, notify_socket: NotifySocket
) -> None:
    """The venue has the request and answers late; the daemon dies meanwhile and comes back
    with the feed still dead: the kill switch is engaged once, under one Idempotency-Key."""
    hold_s = 4.0
    with KillSwitchServer(Behaviour(hold_first=1, hold_s=hold_s)) as venue:
        body = kill_mid_action(venue.activate_url, venue.status_url, timeout="8s")
        setup = write_config(tmp_path, redis_server.url, body)
        first = Daemon(setup.config, notify_socket)  # no ticks: the kill is ordered at once
        try:
            wait_until(lambda: len(venue.received_keys) == 1, 15, "the kill request")
            sent_at = time.time()
            sigkill(first)
        finally:
            first.kill()
        restarted_at = time.time()
        second = restart(setup.config, notify_socket, "restarted")
        try:
            notify_socket.wait_for("STATUS=FLATTEN", timeout_s=15, after=restarted_at)
            latched_in = time.time() - restarted_at
            time.sleep(max(0.0, sent_at + hold_s + 1.0 - time.time()))  # the held one lands
            keys = venue.received_keys
            print(
                f"SIGKILL mid-action (venue holding the request): FLATTEN {latched_in:.2f}s after"
                f" the restart; {len(keys)} request(s), {len(set(keys))} key(s),"
                f" {venue.activations} activation(s)"
            )
            assert venue.active
            assert len(set(keys)) == 1, keys  # the same incident key, retried
            assert venue.activations == 1
            assert sync_redis.hget(key("state"), "kill_switch") == b"ENGAGED"
            assert_no_crash(second)
        finally:
            assert second.terminate() == 0


def test_sigkilled_while_retrying_a_failing_venue_the_kill_is_resumed_after_restart(
    tmp_path: Path, redis_server: RedisServer, sync_redis: Redis, notify_socket: NotifySocket
) -> None:
    """The venue answers 500 while the daemon retries; the daemon dies; by the time it is
    back the venue answers and the feed is healthy again. The kill was ordered: it must still
    happen (never lost), under the same Idempotency-Key."""
    with KillSwitchServer(Behaviour(fail_first=10**6)) as venue:
        body = kill_mid_action(venue.activate_url, venue.status_url, timeout="300ms")
        setup = write_config(tmp_path, redis_server.url, body)
        first = Daemon(setup.config, notify_socket)
        try:
            wait_until(lambda: len(venue.received_keys) >= 2, 15, "the kill being retried")
            sigkill(first)
        finally:
            first.kill()
        venue.behaviour.fail_first = 0  # the venue answers again...
        feed = TickFeed(redis_server.url).start()  # ...and the feed is healthy again
        restarted_at = time.time()
        second = restart(setup.config, notify_socket, "restarted")
        try:
            wait_until(lambda: venue.active, 15, "the kill switch engaged")
            engaged_in = time.time() - restarted_at
            notify_socket.wait_for("STATUS=FLATTEN", timeout_s=10, after=restarted_at)
            keys = venue.received_keys
            print(
                f"SIGKILL mid-retry: kill resumed and engaged {engaged_in:.2f}s after the"
                f" restart; {len(keys)} request(s), {len(set(keys))} key(s)"
            )
            assert len(set(keys)) == 1, keys
            assert venue.activations == 1
            assert "resuming" in second.log()
            assert_no_crash(second)
        finally:
            feed.stop()
            assert second.terminate() == 0

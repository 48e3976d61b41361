"""The daemon acting through several actuators at once, with a real kill-switch server."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from redis import Redis

from testbed.config_blocks import http_kill, redis_flag
from testbed.daemon_process import Daemon, write_config
from testbed.killswitch_server import Behaviour, KillSwitchServer
from testbed.notify_socket import NotifySocket
from testbed.redis_server import RedisServer
from testbed.waiting import wait_until

pytestmark = pytest.mark.slow


def kill_actuators(activate_url: str, status_url: str) -> str:
    """The verified kill API, escalating to the Redis flag when it fails."""
    api = http_kill(
        activate_url,
        status_url=status_url,
        json='{ reason = "{reason}", close_positions = true, operator = "{instance_id}" }',
        timeout="500ms",
        on_failure=["kill_flag"],
    )
    return api + redis_flag()


def kill_config(tmp_path: Path, redis_url: str, server: KillSwitchServer) -> Path:
    config, _ = write_config(tmp_path, redis_url, warn="200ms", breach="300ms", interval="200ms")
    text = config.read_text() + kill_actuators(server.activate_url, server.status_url)
    config.write_text(text.replace('on_breach = ["breaker"]', 'on_breach = ["kill_api"]'))
    return config


def status_now(notify_socket: NotifySocket) -> str:
    """The last STATUS sent."""
    sent = [m for _at, m in notify_socket.messages if m.startswith("STATUS=")]
    return sent[-1].removeprefix("STATUS=") if sent else ""


def test_kill_api_that_never_confirms_escalates_to_the_flag(
    tmp_path: Path, redis_server: RedisServer, sync_redis: Redis, notify_socket: NotifySocket
) -> None:
    with KillSwitchServer(Behaviour(never_confirm=True)) as server:
        daemon = Daemon(kill_config(tmp_path, redis_server.url, server), notify_socket)
        try:  # no ticks: missing keys breach at once, the kill API is called
            wait_until(lambda: sync_redis.get("ops:kill_switch") == b"1", 15, "the escalation")
            # FLATTEN ordered and failing (it is never confirmed), HALTED by the flag meanwhile
            wait_until(lambda: "kill_flag tripped by" in status_now(notify_socket), 5, "STATUS")
            ordered = "FLATTEN: kill_api ordered by spx_ticks, FAILING"
            assert status_now(notify_socket).startswith(ordered)
            assert server.activations == 1  # one incident, one Idempotency-Key
            assert "escalating: kill_api failed" in daemon.log()
        finally:
            assert daemon.terminate() == 0


def test_kill_api_that_fails_three_times_is_retried_with_one_key(
    tmp_path: Path, redis_server: RedisServer, sync_redis: Redis, notify_socket: NotifySocket
) -> None:
    with KillSwitchServer(Behaviour(fail_first=3)) as server:
        daemon = Daemon(kill_config(tmp_path, redis_server.url, server), notify_socket)
        try:
            notify_socket.wait_for("STATUS=FLATTEN: kill_api tripped by", timeout_s=15)
            keys = {r.headers.get("Idempotency-Key") for r in server.activation_requests()}
            assert len(server.activation_requests()) >= 4
            assert len(keys) == 1
            assert server.activations == 1
            time.sleep(0.5)
            assert sync_redis.get("ops:kill_switch") is None  # verified: no escalation
        finally:
            assert daemon.terminate() == 0

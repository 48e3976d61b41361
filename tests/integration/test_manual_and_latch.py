"""Manual trip/kill/reset from the CLI, and latching across restarts, against real Redis."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest
from redis import Redis

from testbed.daemon_process import Daemon, cli, write_config
from testbed.notify_socket import NotifySocket
from testbed.redis_server import RedisServer
from testbed.tick_feed import TickFeed
from testbed.waiting import wait_until

REASON = "operator drill: testing the breaker reset path"


def breaker_state(client: Redis) -> str | None:
    raw = client.get("circuit_breaker:state")
    return None if raw is None else str(json.loads(raw)["state"])


def test_reset_needs_a_real_reason(
    tmp_path: Path, redis_server: RedisServer, sync_redis: Redis
) -> None:
    config, _ = write_config(tmp_path, redis_server.url)
    result = cli("reset", "breaker", "--reason", "because", "--config", str(config))
    assert result.returncode == 1
    assert "at least 20 characters" in result.stderr
    assert cli("trip", "--reason", "short", "--config", str(config)).returncode == 1


@pytest.mark.parametrize("operator", ["Jane Doe", "José", "ops\nWATCHDOG=1"])
def test_any_operator_name_can_trip_and_reset(
    tmp_path: Path, redis_server: RedisServer, sync_redis: Redis, operator: str
) -> None:
    """The name goes into Redis CLIENT SETNAME, which refuses spaces: it must not matter."""
    config, _ = write_config(tmp_path, redis_server.url)
    tripped = cli("trip", "--reason", REASON, "--operator", operator, "--config", str(config))
    assert tripped.returncode == 0, tripped.stderr
    assert breaker_state(sync_redis) == "TRIPPED"
    reset = cli(
        "reset", "breaker", "--reason", REASON, "--operator", operator, "--config", str(config)
    )
    assert reset.returncode == 0, reset.stderr
    assert "Traceback" not in reset.stderr
    assert breaker_state(sync_redis) == "OPEN"


def test_trip_then_reset_then_a_second_reset_is_refused(
    tmp_path: Path, redis_server: RedisServer, sync_redis: Redis
) -> None:
    config, _ = write_config(tmp_path, redis_server.url)
    trip = cli("trip", "--reason", REASON, "--operator", "alice", "--config", str(config))
    assert trip.returncode == 0, trip.stderr
    assert breaker_state(sync_redis) == "TRIPPED"
    assert sync_redis.hexists("sup:engaged", "breaker")
    first = cli(
        "reset", "breaker", "--reason", REASON, "--operator", "bob", "--config", str(config)
    )
    assert first.returncode == 0, first.stderr
    assert breaker_state(sync_redis) == "OPEN"
    assert not sync_redis.hexists("sup:engaged", "breaker")
    second = cli("reset", "breaker", "--reason", REASON, "--config", str(config))
    assert second.returncode == 1
    assert "one reset a minute" in second.stderr
    # Said once, in its own words: not "refused: Redis: Refused: refused: ..."
    assert second.stderr.lower().count("refused") == 1, second.stderr
    assert "Redis" not in second.stderr


def test_reset_during_a_breach_is_refused_unless_forced(
    tmp_path: Path, redis_server: RedisServer, sync_redis: Redis
) -> None:
    config, _ = write_config(tmp_path, redis_server.url)
    sync_redis.hset("sup:watchdog:spx_ticks", mapping={"status": "BREACH"})
    refused = cli("reset", "breaker", "--reason", REASON, "--config", str(config))
    assert refused.returncode == 1
    assert "still breaching: spx_ticks" in refused.stderr
    forced = cli("reset", "breaker", "--reason", REASON, "--force", "--config", str(config))
    assert forced.returncode == 0, forced.stderr


def test_sigkill_after_a_trip_comes_back_reduce_only_even_if_redis_lost_it(
    tmp_path: Path, redis_server: RedisServer, sync_redis: Redis, notify_socket: NotifySocket
) -> None:
    config, _ = write_config(
        tmp_path, redis_server.url, warn="200ms", breach="300ms", interval="200ms"
    )
    daemon = Daemon(config, notify_socket)  # no ticks: missing keys breach, the breaker trips
    wait_until(lambda: breaker_state(sync_redis) == "TRIPPED", 10, "the trip")
    wait_until(lambda: (tmp_path / "state" / "engaged.json").exists(), 5, "the persisted latch")
    daemon.process.send_signal(signal.SIGKILL)
    daemon.kill()
    sync_redis.flushall()  # the worst case: Redis lost the breaker and the published state
    TickFeed(redis_server.url).start().stop()  # and the feed is healthy again
    restarted = Daemon(config, notify_socket)
    try:
        restarted_at = time.time()
        # READY=1 carries the restored state: that is what `systemctl status` keeps showing.
        notify_socket.wait_for("READY=1\nSTATUS=REDUCE_ONLY (restored)", after=restarted_at)
        wait_until(lambda: breaker_state(sync_redis) == "TRIPPED", 10, "the breaker re-engaged")
        assert "restored trading_state=REDUCE_ONLY from state_dir" in restarted.log()
    finally:
        assert restarted.terminate() == 0


def test_daemon_follows_a_manual_trip_and_a_manual_reset(
    tmp_path: Path, redis_server: RedisServer, sync_redis: Redis, notify_socket: NotifySocket
) -> None:
    config, _ = write_config(tmp_path, redis_server.url, warn="30s", breach="60s")
    feed = TickFeed(redis_server.url).start()
    daemon = Daemon(config, notify_socket)
    try:
        notify_socket.wait_for("READY=1")
        assert cli("trip", "--reason", REASON, "--config", str(config)).returncode == 0
        notify_socket.wait_for("STATUS=REDUCE_ONLY: manual trip by")
        reset_at = time.time()
        assert cli("reset", "breaker", "--reason", REASON, "--config", str(config)).returncode == 0
        notify_socket.wait_for("STATUS=ACTIVE", after=reset_at)
        time.sleep(1.5)  # a few housekeeping cycles: the daemon must not re-engage it
        assert breaker_state(sync_redis) == "OPEN"
        assert "released by a manual reset" in daemon.log()
    finally:
        feed.stop()
        assert daemon.terminate() == 0

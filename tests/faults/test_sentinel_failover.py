"""A Redis master failover under the running daemon, through Redis Sentinel: forced
(`SENTINEL FAILOVER`, the old master demoted ~10 s later) and after a SIGKILL of the primary.

The daemon is not restarted. It must go on publishing on the new master, keep what it had
latched, trip nothing while the master changes (its watchdogs are at most UNKNOWN for the
seconds it takes, within `unknown_grace`), and trip on the new master when the feed stops.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from redis import Redis

from testbed.config_blocks import ha as ha_section
from testbed.config_blocks import redis_flag, ticks_watchdog
from testbed.daemon_process import Daemon, cli
from testbed.notify_socket import NotifySocket
from testbed.redis_server import RedisServer
from testbed.sentinel import SentinelSetup, running_sentinels
from testbed.tick_feed import TickFeed
from testbed.waiting import wait_until
from tests.faults.stack import BREAKER, BREAKER_KEY, assert_no_crash, key, statuses, write_config

pytestmark = pytest.mark.slow

# warn/breach of a few seconds: a failover's gap in the ticks (the writes the old master took
# after the replica was promoted, ~1 s) must not look stale; a stopped feed still trips soon.
BODY = redis_flag("halt", "trading:halt", None) + ticks_watchdog(warn="3s", breach="4s")
REASON = "failover drill: halted by hand before the master changes"
HISTORY_KEY = "circuit_breaker:history"


@pytest.fixture
def sentinels(tmp_path: Path) -> Iterator[SentinelSetup]:
    with running_sentinels(tmp_path / "redis") as setup:
        yield setup


def heartbeat(client: Redis) -> float:
    return float(client.get(key("heartbeat")) or 0)


def run_failover(
    tmp_path: Path,
    sentinels: SentinelSetup,
    notify: NotifySocket,
    fail_over: Callable[[], RedisServer],
    ha: bool = False,
) -> None:
    setup = write_config(tmp_path, sentinels.url, BREAKER + BODY + (ha_section() if ha else ""))
    feed = TickFeed(sentinels.url).start()
    daemon = Daemon(setup.config, notify)
    try:
        notify.wait_for("ACTIVE: 1 of 1 watchdogs OK", timeout_s=15)  # "[leader 1] " with HA
        halted = cli("kill", "--reason", REASON, "--config", str(setup.config))
        assert halted.returncode == 0, halted.stderr
        with sentinels.client(sentinels.master()) as old:
            wait_until(lambda: old.hexists(key("engaged"), "halt"), 5, "the latch in Redis")
            wait_until(  # the daemon took it up (its next housekeeping pass) and published it
                lambda: old.hget(key("state"), "trading_state") == b"HALTED", 5, "HALTED"
            )
            old.wait(1, 2000)  # on the replica too: what a failover must not lose

        started_at = time.time()
        new = fail_over()
        switched_at = time.time()
        with sentinels.client(new) as client:
            wait_until(lambda: heartbeat(client) > switched_at, 5, "a heartbeat on the new master")
            followed_in = time.time() - switched_at
            time.sleep(3.0)  # the daemon and the feed on the new master, a few checks more
            assert client.hexists(key("engaged"), "halt"), "the latched halt was lost"
            assert client.get("trading:halt") == b"1"
            assert client.hget(key("state"), "trading_state") == b"HALTED"
            assert client.get(BREAKER_KEY) is None, "a false trip during the failover"
            assert client.zcard(HISTORY_KEY) == 0
            during = [s for s in statuses(notify, after=started_at) if "DEGRADED" in s]
            assert "DEGRADED" not in statuses(notify)[-1], "still DEGRADED on the new master"
            heartbeat_age = time.time() - heartbeat(client)

            stopped_at = time.time()
            feed.stop()
            wait_until(lambda: client.get(BREAKER_KEY) is not None, 10, "the trip")
            tripped_in = time.time() - stopped_at
            assert json.loads(client.get(BREAKER_KEY) or "{}")["state"] == "TRIPPED"
            if ha:  # it leads on the new master (the lease moved with it, or was taken again)
                assert client.get(key("leader")) == b"sup-faults"
        print(
            f"failover took {switched_at - started_at:.2f}s; heartbeat on the new master"
            f" {followed_in:.2f}s after the sentinels named it (age {heartbeat_age:.2f}s 3 s"
            f" later); DEGRADED statuses meanwhile: {during or 'none'}; tripped on"
            f" the new master {tripped_in:.2f}s after the feed stopped"
        )
        if during:  # the journal says when it ends
            assert "redis: reachable again" in daemon.log()
        assert_no_crash(daemon)
    finally:
        feed.stop()
        assert daemon.terminate() == 0


def test_a_forced_failover_is_followed_with_no_false_trip_and_nothing_lost(
    tmp_path: Path, sentinels: SentinelSetup, notify_socket: NotifySocket
) -> None:
    run_failover(tmp_path, sentinels, notify_socket, sentinels.failover)


def test_a_killed_primary_is_followed_with_no_false_trip_and_nothing_lost(
    tmp_path: Path, sentinels: SentinelSetup, notify_socket: NotifySocket
) -> None:
    """With the leader lease on: the lease lives in the Redis that failed over too."""
    run_failover(tmp_path, sentinels, notify_socket, sentinels.kill_master, ha=True)

"""Faults of the supervisor's own Redis: killed, frozen, restarted empty, blackholed.

Redis is where the daemon reads ticks and publishes what it knows, but never what keeps it
alive: systemd's keepalive (WATCHDOG=1) must go on through every one of these, and nothing may
trip because the supervisor cannot see.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from redis import Redis

from testbed.config_blocks import http_kill, ticks_watchdog
from testbed.daemon_process import Daemon, cli
from testbed.killswitch_server import KillSwitchServer
from testbed.notify_socket import NotifySocket
from testbed.redis_server import RedisServer
from testbed.tcp_proxy import TcpProxy
from testbed.tick_feed import TickFeed
from testbed.waiting import wait_until
from tests.faults.stack import (
    BREAKER,
    BREAKER_KEY,
    assert_no_crash,
    keepalives,
    key,
    longest_keepalive_gap,
    sample,
    scrape,
    statuses,
    write_config,
)

pytestmark = pytest.mark.slow

# Thresholds of a minute: an outage of a few seconds must not make a fresh feed look stale.
TICKS = ticks_watchdog(warn="30s", breach="60s", trip_after=3)
HEALTHY_STATUS = "STATUS=ACTIVE: 1 of 1 watchdogs OK"
REASON = "fault drill: Redis lost everything, releasing the breaker"
KEEPALIVE_GAP_LIMIT_S = 2.5  # WATCHDOG=1 every ~1 s; systemd's WatchdogSec is 10 s


def breaker_state(client: Redis) -> str | None:
    raw = client.get(BREAKER_KEY)
    return None if raw is None else str(json.loads(raw)["state"])


def test_redis_killed_and_restarted_keeps_the_keepalive_and_trips_nothing(
    tmp_path: Path, private_redis: RedisServer, notify_socket: NotifySocket
) -> None:
    setup = write_config(tmp_path, private_redis.url, BREAKER + TICKS)
    feed = TickFeed(private_redis.url).start()
    daemon = Daemon(setup.config, notify_socket)
    client = Redis.from_url(private_redis.url, socket_timeout=1)
    try:
        notify_socket.wait_for(HEALTHY_STATUS)
        private_redis.kill()
        down_at = time.time()
        degraded_at, degraded = notify_socket.wait_for("DEGRADED", timeout_s=5, after=down_at)
        degraded_in = degraded_at - down_at
        assert "redis" in degraded
        time.sleep(5 - (time.time() - down_at))
        private_redis.start()  # empty: no persistence
        up_at = time.time()
        wait_until(lambda: client.exists(key("heartbeat")) == 1, 10, "the heartbeat back")
        heartbeat_in = time.time() - up_at
        notify_socket.wait_for(HEALTHY_STATUS, timeout_s=10, after=up_at)
        time.sleep(2.0)  # a few cycles more with Redis back: still nothing trips
        gap = longest_keepalive_gap(notify_socket, down_at, time.time())
        print(
            f"redis SIGKILLed: DEGRADED after {degraded_in:.2f}s; redis back: heartbeat after"
            f" {heartbeat_in:.2f}s; longest WATCHDOG=1 gap {gap:.2f}s"
        )
        assert gap < KEEPALIVE_GAP_LIMIT_S
        assert breaker_state(client) is None
        assert "incident=" not in daemon.log() and "action actuator=" not in daemon.log()
        assert "redis: reachable again" in daemon.log()
        assert_no_crash(daemon)
    finally:
        feed.stop()
        client.close()
        assert daemon.terminate() == 0


def test_redis_frozen_longer_than_watchdog_sec_keepalive_never_pauses(
    tmp_path: Path, private_redis: RedisServer, notify_socket: NotifySocket
) -> None:
    """SIGSTOP: connections are accepted by the kernel and never answered. The keepalive
    must not wait for Redis, or systemd (WatchdogSec=10s) would kill a healthy daemon."""
    freeze_s = 11.0
    setup = write_config(tmp_path, private_redis.url, BREAKER + TICKS)
    feed = TickFeed(private_redis.url).start()
    daemon = Daemon(setup.config, notify_socket)
    client = Redis.from_url(private_redis.url, socket_timeout=1)
    try:
        notify_socket.wait_for(HEALTHY_STATUS)
        last_run_before = float(client.hget(key("watchdog:spx_ticks"), "last_run") or 0)
        private_redis.freeze()
        frozen_at = time.time()
        try:
            degraded_at, degraded = notify_socket.wait_for("DEGRADED", timeout_s=5, after=frozen_at)
            degraded_in = degraded_at - frozen_at
            time.sleep(freeze_s - (time.time() - frozen_at))
        finally:
            private_redis.thaw()
        thawed_at = time.time()
        gap = longest_keepalive_gap(notify_socket, frozen_at, thawed_at)
        pings = len(keepalives(notify_socket, frozen_at, thawed_at))
        notify_socket.wait_for(HEALTHY_STATUS, timeout_s=10, after=thawed_at)
        recovered_in = time.time() - thawed_at
        wait_until(
            lambda: float(client.hget(key("watchdog:spx_ticks"), "last_run") or 0) > thawed_at - 1,
            5,
            "a watchdog run published after the thaw",
        )
        print(
            f"redis frozen {freeze_s:.0f}s: DEGRADED after {degraded_in:.2f}s, {pings} WATCHDOG=1,"
            f" longest gap {gap:.2f}s; healthy again {recovered_in:.2f}s after SIGCONT"
        )
        assert "redis" in degraded
        assert gap < KEEPALIVE_GAP_LIMIT_S, f"a {gap:.1f}s gap in WATCHDOG=1"
        assert pings >= freeze_s - 2
        assert float(client.hget(key("watchdog:spx_ticks"), "last_run") or 0) > last_run_before
        assert breaker_state(client) is None
        assert_no_crash(daemon)
    finally:
        private_redis.thaw()
        feed.stop()
        client.close()
        assert daemon.terminate() == 0


def kill_on_breach(activate_url: str, status_url: str) -> str:
    """The breaker and the verified kill API, both at the first breach."""
    api = http_kill(activate_url, status_url=status_url, timeout="500ms")
    calm = ticks_watchdog(["breaker", "kill_api"], warn="30s", breach="60s", trip_after=1)
    return api + calm


def test_redis_restarted_empty_while_engaged_everything_is_written_back(
    tmp_path: Path, private_redis: RedisServer, notify_socket: NotifySocket
) -> None:
    """Redis loses the breaker and `{ns}:engaged` while the breaker and a venue kill switch
    are engaged: the daemon writes its latches back and re-trips the breaker; the state never
    leaves FLATTEN and nothing is released."""
    with KillSwitchServer() as venue:
        body = BREAKER + kill_on_breach(venue.activate_url, venue.status_url)
        setup = write_config(tmp_path, private_redis.url, body)
        daemon = Daemon(setup.config, notify_socket)  # no ticks yet: "no tick" breaches
        client = Redis.from_url(private_redis.url, socket_timeout=1)
        feed: TickFeed | None = None
        try:
            flatten_at, _ = notify_socket.wait_for("STATUS=FLATTEN", timeout_s=10)
            wait_until(lambda: client.hlen(key("engaged")) == 2, 5, "both latches in redis")
            feed = TickFeed(private_redis.url).start()  # the feed is back: the incident clears
            private_redis.kill()
            private_redis.start()  # empty
            restarted_at = time.time()
            wait_until(lambda: client.hlen(key("engaged")) == 2, 10, "the latches written back")
            written_back_in = time.time() - restarted_at
            wait_until(lambda: breaker_state(client) == "TRIPPED", 10, "the breaker re-tripped")
            retripped_in = time.time() - restarted_at
            wait_until(
                lambda: client.hget(key("state"), "trading_state") == b"FLATTEN", 5, "{ns}:state"
            )
            time.sleep(2.0)  # a few housekeeping passes: nothing is released meanwhile
            print(
                f"redis restarted empty: {{ns}}:engaged written back in {written_back_in:.2f}s,"
                f" breaker re-tripped in {retripped_in:.2f}s"
            )
            since_flatten = statuses(notify_socket, flatten_at)  # STATUS= is sent on change
            assert all(s.startswith("FLATTEN") for s in since_flatten), since_flatten
            assert venue.active and venue.activations == 1
            assert set(client.hkeys(key("engaged"))) == {b"breaker", b"kill_api"}
            assert "found released without a reset: engaging it again" in daemon.log()
            assert "released by a manual reset" not in daemon.log()

            # Redis lost `{ns}:seq` too; an operator's reset must still come after the
            # engagements it is meant to release, and stay released.
            reset = cli("reset", "breaker", "--reason", REASON, "--config", str(setup.config))
            assert reset.returncode == 0, reset.stderr
            wait_until(lambda: "released by a manual reset" in daemon.log(), 5, "the reset")
            time.sleep(2.0)
            assert breaker_state(client) == "OPEN"
            assert set(client.hkeys(key("engaged"))) == {b"kill_api"}
            assert "actuator=breaker found released" not in daemon.log().split("released by")[-1]
            assert_no_crash(daemon)
        finally:
            if feed is not None:
                feed.stop()
            client.close()
            assert daemon.terminate() == 0


def blackhole_watchdogs(activate_url: str, grace: str) -> str:
    """A watchdog that does not fail closed, and one that does (ES) and calls the kill API."""
    fail_closed = f'fail_closed = true\nunknown_grace = "{grace}"'
    spx = ticks_watchdog(warn="30s", breach="60s", trip_after=None)
    es = ticks_watchdog(
        ["kill_api"],
        name="es_ticks_fail_closed",
        warn="30s",
        breach="60s",
        trip_after=None,
        instruments=["ES"],
        extra=fail_closed,
    )
    return http_kill(activate_url, timeout="500ms") + spx + es


def watchdog_status(metrics_port: int, name: str = "spx_ticks") -> float | None:
    return sample(scrape(metrics_port), "supervisor_watchdog_status", watchdog=name)


def test_redis_blackholed_unknown_within_timeout_only_fail_closed_trips(
    tmp_path: Path, private_redis: RedisServer, notify_socket: NotifySocket
) -> None:
    """Redis behind a proxy that starts swallowing everything: TCP up, no answers."""
    grace_s = 3.0
    with TcpProxy(private_redis.port) as proxy, KillSwitchServer() as venue:
        body = BREAKER + blackhole_watchdogs(venue.activate_url, grace="3s")
        setup = write_config(tmp_path, proxy.url(), body)
        feed = TickFeed(private_redis.url).start()  # the feed itself reaches Redis directly
        daemon = Daemon(setup.config, notify_socket)
        try:
            notify_socket.wait_for("STATUS=ACTIVE: 2 of 2 watchdogs OK")
            proxy.blackhole()
            holed_at = time.time()
            wait_until(lambda: watchdog_status(setup.metrics_port) == 4.0, 5, "UNKNOWN")
            unknown_in = time.time() - holed_at
            status_at, _ = notify_socket.wait_for("spx_ticks UNKNOWN", timeout_s=5, after=holed_at)
            degraded_at, _ = notify_socket.wait_for("DEGRADED: redis", timeout_s=5, after=holed_at)
            degraded_in = degraded_at - holed_at
            wait_until(lambda: venue.activations == 1, 15, "the fail-closed watchdog's trip")
            tripped_in = time.time() - holed_at
            time.sleep(1.0)
            gap = longest_keepalive_gap(notify_socket, holed_at, time.time())
            print(
                f"redis blackholed: UNKNOWN after {unknown_in:.2f}s (in STATUS after"
                f" {status_at - holed_at:.2f}s), DEGRADED after {degraded_in:.2f}s,"
                f" fail_closed trip after {tripped_in:.2f}s (unknown_grace {grace_s:.0f}s),"
                f" longest WATCHDOG=1 gap {gap:.2f}s"
            )
            assert unknown_in < 1.5  # the next run (500 ms) is cut off by its timeout (500 ms)
            assert grace_s <= tripped_in < grace_s + 3.0
            assert gap < KEEPALIVE_GAP_LIMIT_S
            log = daemon.log()
            assert "watchdog=es_ticks_fail_closed status=BREACH" in log
            assert "fail-closed: unknown for" in log
            assert "watchdog=spx_ticks incident=" not in log  # no trip on not seeing
            assert "actuator=breaker" not in log
            proxy.forward()
            client = Redis.from_url(private_redis.url, socket_timeout=1)
            client.delete(key("heartbeat"))
            wait_until(lambda: client.exists(key("heartbeat")) == 1, 10, "the heartbeat back")
            wait_until(lambda: "redis: reachable again" in daemon.log(), 5, "the recovery")
            client.close()
            assert_no_crash(daemon)
        finally:
            feed.stop()
            assert daemon.terminate() == 0

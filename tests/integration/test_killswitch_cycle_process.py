"""The HTTP kill switch's whole cycle with the real daemon process, a real venue (a kill
switch with engaged/released state) and the real CLI, as an on-call operator runs it: the feed
stops and the venue is killed; the feed is back; `trading-supervisor reset kill`; the venue is
released (by the reset's release request, or by the operator at the venue after the reset);
trading is ACTIVE and stays ACTIVE; the feed stops again and the venue is killed again under a
new Idempotency-Key, counted as an engagement."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from redis import Redis

from testbed.config_blocks import FAST_TICKS, http_kill, ticks_watchdog
from testbed.daemon_process import Daemon, cli
from testbed.killswitch_server import KillSwitchServer
from testbed.notify_socket import NotifySocket
from testbed.redis_server import RedisServer
from testbed.tick_feed import TickFeed
from testbed.waiting import wait_until
from tests.faults.stack import assert_no_crash, key, sample, scrape, statuses, write_config

pytestmark = pytest.mark.slow


def kill_body(activate_url: str, status_url: str, release: str) -> str:
    """The verified kill API (released by the reset when `release` says how) on a stale feed."""
    api = http_kill(
        activate_url,
        status_url=status_url,
        json='{ reason = "{reason}", enabled = false }',
        retry_for="3s",
        extra=release,
    )
    return api + ticks_watchdog(["kill_api"], **FAST_TICKS, extra="clear_after = 2")


RELEASE = "release = { json = { enabled = true } }"
REASON = "feed restored and checked by the on-call operator"
WAITING = "kill_api reset, waiting for the venue to release"


def last_status(notify: NotifySocket) -> str:
    sent = statuses(notify)
    return sent[-1] if sent else ""


@pytest.mark.parametrize("released_by", ["the reset", "the operator after the reset"])
def test_kill_reset_resume_and_kill_again(
    tmp_path: Path,
    redis_server: RedisServer,
    sync_redis: Redis,
    notify_socket: NotifySocket,
    released_by: str,
) -> None:
    with KillSwitchServer() as venue:
        release = RELEASE if released_by == "the reset" else ""
        body = kill_body(venue.activate_url, venue.status_url, release)
        setup = write_config(tmp_path, redis_server.url, body)
        feed = TickFeed(redis_server.url).start()
        daemon = Daemon(setup.config, notify_socket)
        try:
            wait_until(lambda: last_status(notify_socket).startswith("ACTIVE"), 15, "ACTIVE")
            feed.stop()  # the feed stops: the venue is killed
            wait_until(lambda: venue.active, 10, "the venue killed")
            wait_until(
                lambda: last_status(notify_socket).startswith("FLATTEN: kill_api tripped by"),
                5,
                "STATUS FLATTEN",
            )
            feed = TickFeed(redis_server.url).start()  # the feed is back; the latch holds
            wait_until(
                lambda: sync_redis.hget(key("watchdog:spx_ticks"), "status") == b"OK", 10, "OK"
            )
            reset = cli("reset", "kill", "--reason", REASON, "--config", str(setup.config))
            assert reset.returncode == 0, reset.stderr
            if released_by == "the reset":
                assert "kill_api: released" in reset.stdout, reset.stdout
                assert not venue.active
            else:
                assert venue.active  # the venue still kills: the reset waits for it
                wait_until(lambda: WAITING in last_status(notify_socket), 5, "STATUS waiting")
                metrics = scrape(setup.metrics_port)
                waiting = sample(metrics, "supervisor_reset_waiting_for_venue", actuator="kill_api")
                assert waiting == 1
                assert sample(metrics, "supervisor_trading_state") == 3
                shown = cli("status", "--config", str(setup.config))
                assert WAITING in shown.stdout, shown.stdout  # `trading-supervisor status`
                time.sleep(1.5)  # a reset is not a reason to engage it again, nor to give up
                assert venue.activations == 1 and venue.active
                venue.release()  # the operator releases it at the venue (runbook 002)
            wait_until(lambda: last_status(notify_socket).startswith("ACTIVE"), 5, "ACTIVE")
            time.sleep(3.0)  # it stays ACTIVE: nothing engages it again on its own
            assert last_status(notify_socket).startswith("ACTIVE"), last_status(notify_socket)
            assert not venue.active and venue.activations == 1
            assert sync_redis.hget(key("state"), "trading_state") == b"ACTIVE"
            assert "engaging it again" not in daemon.log()

            feed.stop()  # a new fault: killed again, under a new incident
            wait_until(lambda: venue.activations == 2, 10, "the second kill")
            keys = venue.received_keys
            assert len(set(keys)) == 2, keys  # a new Idempotency-Key
            wait_until(
                lambda: last_status(notify_socket).startswith("FLATTEN: kill_api tripped by"),
                5,
                "STATUS FLATTEN again",
            )
            engaged = sample(
                scrape(setup.metrics_port),
                "supervisor_actions_total",
                actuator="kill_api",
                outcome="engaged",
            )
            assert engaged == 2  # both kills recorded as what the venue did
            assert "outcome=already_engaged" not in daemon.log()
            assert_no_crash(daemon)
        finally:
            feed.stop()
            assert daemon.terminate() == 0

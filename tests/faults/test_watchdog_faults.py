"""Watchdogs that break: bad data that made a check raise, a source that hangs, a Redis key of
the wrong type, a Prometheus answer that is garbage. Only the broken ones degrade; the others
keep running, and a real fault elsewhere still trips.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from redis import Redis

from testbed.config_blocks import redis_flag, ticks_watchdog
from testbed.daemon_process import Daemon
from testbed.http_server import HttpServer
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
    sample,
    scrape,
    write_config,
)

pytestmark = pytest.mark.slow

QUOTES = redis_flag("lock_flag", "ops:halt", None) + ticks_watchdog(
    name="quotes",
    key="quotes:{instrument}",
    interval="250ms",
    extra='json_field = "max_by(ticks, &ts).ts"',
)
WATCHDOGS = """
[[watchdogs]]
name = "stalled_api"
kind = "http_value"
url = "{hang_url}"
path = "queue_depth"
breach = 100
interval = "300ms"

[[watchdogs]]
name = "wrong_type"
kind = "redis_value"
key = "risk:exposure"
breach = 1000000
interval = "300ms"

[[watchdogs]]
name = "prom_garbage"
kind = "prometheus_query"
url = "{prom_url}"
query = "up"
direction = "below"
breach = 1
interval = "300ms"

[[watchdogs]]
name = "locks"
kind = "lock_ttl"
keys = ["orders:lock"]
interval = "250ms"
on_breach = ["lock_flag"]
"""
BROKEN = ("quotes", "stalled_api", "wrong_type", "prom_garbage")


def quote(now: float) -> str:
    return json.dumps({"ticks": [{"ts": int(now * 1000) - 50}, {"ts": int(now * 1000)}]})


def watchdog_field(client: Redis, name: str, field: str) -> str:
    raw = client.hget(key(f"watchdog:{name}"), field)
    return raw.decode() if isinstance(raw, bytes) else ""


def test_broken_watchdogs_degrade_alone_and_the_others_still_trip(
    tmp_path: Path,
    redis_server: RedisServer,
    sync_redis: Redis,
    http_server: HttpServer,
    notify_socket: NotifySocket,
) -> None:
    # ES quotes mix numbers and strings: max_by() raises TypeError inside jmespath.
    sync_redis.set("quotes:ES", json.dumps({"ticks": [{"ts": 1}, {"ts": "1700000000000"}]}))
    sync_redis.hset("risk:exposure", "usd", "12")  # a hash where a number is expected
    http_server.answer_json("/hang", {"queue_depth": 1}, delay_s=30)  # never in time
    http_server.answer_raw("/api/v1/query", b"\x00\xffnot prometheus{{{")
    others = WATCHDOGS.format(hang_url=http_server.url("/hang"), prom_url=http_server.url())
    body = BREAKER + QUOTES + others
    setup = write_config(tmp_path, redis_server.url, body)
    feed = TickFeed(redis_server.url, ("SPX",), key="quotes:{instrument}", render=quote).start()
    daemon = Daemon(setup.config, notify_socket)
    try:
        notify_socket.wait_for("READY=1", timeout_s=15)
        started_at = time.time()
        _, status = notify_socket.wait_for("checks cut off", timeout_s=10)
        degraded_in = time.time() - started_at
        metrics = scrape(setup.metrics_port)
        statuses = {n: sample(metrics, "supervisor_watchdog_status", watchdog=n) for n in BROKEN}
        reasons = {n: watchdog_field(sync_redis, n, "reason") for n in BROKEN}
        print(f"broken watchdogs: cut-offs DEGRADED after {degraded_in:.2f}s; {reasons}")
        assert statuses == dict.fromkeys(BROKEN, 4.0)  # UNKNOWN, each
        assert "ES: unreadable tick timestamp" in reasons["quotes"]
        assert "SPX" not in reasons["quotes"]  # bad ES data does not blind SPX
        assert "check timed out" in reasons["stalled_api"]
        assert "WRONGTYPE" in reasons["wrong_type"]
        assert "not JSON" in reasons["prom_garbage"] or "JSON" in reasons["prom_garbage"]
        problems = status.partition("| DEGRADED: ")[2]
        assert problems == "watchdog stalled_api: checks cut off after 300ms", status

        # Real faults next to the broken watchdogs still trip: a lock without expiry, and
        # the SPX quotes going stale while ES stays unreadable.
        sync_redis.set("orders:lock", "owner-1")
        wait_until(lambda: sync_redis.get("ops:halt") == b"1", 5, "the lock's trip")
        last_quote = feed.stop()
        wait_until(lambda: sync_redis.get(BREAKER_KEY) is not None, 10, "the quotes' trip")
        tripped = json.loads(sync_redis.get(BREAKER_KEY) or "{}")
        latency = float(tripped["tripped_at"]) - last_quote
        gap = longest_keepalive_gap(notify_socket, started_at, time.time())
        print(
            f"stale SPX quotes tripped {latency:.2f}s after the last one; keepalive gap {gap:.2f}s"
        )
        assert tripped["state"] == "TRIPPED" and "SPX age" in tripped["reason"]
        assert 1.5 < latency < 3.0  # breach 1.5 s, two runs 250 ms apart, a loaded host
        assert gap < 2.5  # a hung source never holds up the keepalive
        assert "check failed unexpectedly" not in daemon.log()
        assert_no_crash(daemon)
    finally:
        feed.stop()
        assert daemon.terminate() == 0

"""The daemon's /metrics as a real scrape shows it: a daemon subprocess with one watchdog of
each kind that reads Redis or PostgreSQL (so every kind gauge has samples), run until its
breaker has tripped (so the action counters have samples), then scraped and stopped.

tests/deploy checks this text with `promtool check metrics`, and the Grafana dashboard's
queries against the metric names in it.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import httpx
from redis import Redis

from testbed.config_blocks import postgres, supervisor_tables
from testbed.daemon_process import Daemon
from testbed.waiting import free_port, wait_until

NAMESPACE = "live-metrics"
WATCHDOGS = ("ticks", "locks", "margin", "breaker_age", "queue_depth", "poison")

BODY = """
[actuators.breaker]
kind = "redis_breaker"
level = "reduce_only"
key = "live:breaker"

# No tick is ever written: BREACH ("no tick") at the first check, and the breaker trips.
[[watchdogs]]
name = "ticks"
kind = "tick_freshness"
key = "live:tick:{instrument}"
instruments = ["SPX", "ES"]
warn = "5s"
breach = "10s"
interval = "500ms"
on_breach = ["breaker"]

[[watchdogs]]
name = "locks"
kind = "lock_ttl"
keys = ["live:lock:a", "live:lock:b"]
interval = "500ms"

[[watchdogs]]
name = "margin"
kind = "margin"
redis_key = "live:account"
used = "used"
equity = "equity"
warn = 0.25
breach = 0.30
interval = "500ms"

[[watchdogs]]
name = "breaker_age"
kind = "cb_staleness"
key = "live:owner_breaker"
json_field = "updated_at"
interval = "500ms"

[[watchdogs]]
name = "queue_depth"
kind = "redis_value"
key = "live:queue_depth"
breach = 100
interval = "500ms"

[[watchdogs]]
name = "poison"
kind = "poison_queue"
query = "SELECT 3"
warn = 5
breach = 10
interval = "500ms"
"""


def write_config(directory: Path, redis_url: str, postgres_dsn: str) -> tuple[Path, int]:
    port = free_port()
    tables = supervisor_tables(
        directory / "state",
        redis_url,
        instance_id="sup-live-metrics",
        namespace=NAMESPACE,
        metrics_port=port,
    )
    text = tables + postgres(postgres_dsn, timeout=None) + BODY
    path = directory / "supervisor.toml"
    path.write_text(text, encoding="utf-8")
    return path, port


def seed(redis_url: str) -> None:
    """Values every watchdog but `ticks` can read and judge."""
    client = Redis.from_url(redis_url)
    try:
        client.set("live:lock:a", "worker-1", px=20_000)
        client.set("live:lock:b", "worker-2", px=20_000)
        client.hset("live:account", mapping={"used": "1000", "equity": "10000"})
        client.set("live:owner_breaker", json.dumps({"state": "OPEN", "updated_at": time.time()}))
        client.set("live:queue_depth", "7")
    finally:
        client.close()


def scrape(port: int) -> str | None:
    try:
        reply = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=1)
    except httpx.HTTPError:
        return None
    return reply.text if reply.status_code == 200 else None


def ready(text: str | None) -> bool:
    """The breaker has tripped and every watchdog has run at least once."""
    if text is None or not re.search(
        r'supervisor_actions_total\{actuator="breaker",'
        r'outcome="engaged"\} [1-9]',
        text,
    ):
        return False
    return all(f'supervisor_watchdog_status{{watchdog="{name}"}}' in text for name in WATCHDOGS)


def scrape_after_a_trip(directory: Path, redis_url: str, postgres_dsn: str) -> str:
    """Run the daemon until its breaker has tripped, return one scrape, stop the daemon."""
    seed(redis_url)
    config, port = write_config(directory, redis_url, postgres_dsn)
    daemon = Daemon(config, None)
    try:
        wait_until(lambda: ready(scrape(port)), 20, "the breaker trip in /metrics")
        text = scrape(port)
        assert text is not None
        return text
    except TimeoutError as exc:
        raise TimeoutError(f"{exc}\n--- daemon log ---\n{daemon.log()}") from None
    finally:
        daemon.terminate()

"""What the daemon benchmarks run against: a private redis-server, a healthy feed for many
instruments, a real HTTP kill endpoint, and the daemon as a real subprocess with its config."""

from __future__ import annotations

import contextlib
import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from redis import Redis

from testbed.bulk_feed import BulkFeed
from testbed.daemon_process import Daemon
from testbed.killswitch_server import KillSwitchServer
from testbed.notify_socket import NotifySocket
from testbed.redis_server import RedisServer
from testbed.waiting import free_port, wait_until

NAMESPACE = "bench"
WATCHDOG = "ticks"
BREAKER_KEY = "circuit_breaker:state"


def instruments(count: int) -> list[str]:
    return [f"I{i:06d}" for i in range(count)]


def tick_key(instrument: str) -> str:
    return f"ticks:last:{instrument}"


@dataclass(frozen=True)
class Thresholds:
    warn: str
    breach: str
    interval: str = "1s"


def write_config(
    directory: Path,
    redis_url: str,
    names: list[str],
    thresholds: Thresholds,
    kill_url: str | None = None,
) -> tuple[Path, int]:
    """A config with one tick_freshness watchdog over `names`: a breach trips the breaker,
    or, given `kill_url`, calls that HTTP kill switch (trip_after 1, clear_after 1)."""
    metrics_port = free_port()
    actuator = "kill_api" if kill_url else "breaker"
    text = f"""
[supervisor]
instance_id = "bench"
namespace = "{NAMESPACE}"
state_dir = "{directory / "state"}"

[redis]
url = "{redis_url}"
timeout = "1s"

[metrics]
listen = "127.0.0.1:{metrics_port}"

[actuators.breaker]
kind = "redis_breaker"
level = "reduce_only"
key = "{BREAKER_KEY}"
"""
    if kill_url:
        text += f"""
[actuators.kill_api]
kind = "http"
level = "halted"
url = "{kill_url}"
json = {{ reason = "{{reason}}" }}
timeout = "2s"
"""
    text += f"""
[[watchdogs]]
name = "{WATCHDOG}"
kind = "tick_freshness"
key = "ticks:last:{{instrument}}"
instruments = {json.dumps(names)}
warn = "{thresholds.warn}"
breach = "{thresholds.breach}"
interval = "{thresholds.interval}"
trip_after = 1
clear_after = 1
on_breach = ["{actuator}"]
"""
    path = directory / "supervisor.toml"
    path.write_text(text, encoding="utf-8")
    return path, metrics_port


@dataclass
class Running:
    daemon: Daemon
    feed: BulkFeed
    metrics_port: int
    started_s: float  # start to READY=1
    thresholds: Thresholds

    @property
    def pid(self) -> int:
        return self.daemon.process.pid

    def metrics(self) -> tuple[str, float]:
        """The /metrics text and how long it took to answer."""
        started = time.perf_counter()
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as answer:
            body = answer.read().decode()
        return body, time.perf_counter() - started


@contextlib.contextmanager
def running_daemon(
    directory: Path,
    server: RedisServer,
    names: list[str],
    thresholds: Thresholds,
    feed_period_s: float,
    kill: KillSwitchServer | None = None,
) -> Iterator[Running]:
    """The daemon watching `names`, all fed every `feed_period_s`, READY and through its
    first checks; stopped (and the feed) afterwards."""
    Redis.from_url(server.url).flushall()
    feed = BulkFeed(server.url, [tick_key(n) for n in names], feed_period_s).start()
    kill_url = kill.activate_url if kill is not None else None
    config, port = write_config(directory, server.url, names, thresholds, kill_url)
    notify = NotifySocket()
    daemon: Daemon | None = None
    try:
        started = time.monotonic()
        daemon = Daemon(config, notify)
        wait_ready(daemon, notify, timeout_s=120)
        ready_s = time.monotonic() - started
        with draining(notify):
            running = Running(daemon, feed, port, ready_s, thresholds)
            wait_until(
                lambda: "supervisor_watchdog_subjects" in running.metrics()[0], 60, "a check"
            )
            yield running
            feed.stop()
            daemon.terminate(timeout_s=30)
    finally:
        feed.stop()
        if daemon is not None and daemon.process.poll() is None:
            daemon.terminate(timeout_s=30)
        notify.close()


def wait_ready(daemon: Daemon, notify: NotifySocket, timeout_s: float) -> None:
    """Until READY=1; a daemon that exits first, or never says it, fails with its log."""
    deadline = time.monotonic() + timeout_s
    while not any("READY=1" in message for _at, message in notify.messages):
        if daemon.process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(
                f"the daemon did not become ready (exit code {daemon.process.poll()}):\n"
                + "\n".join(daemon.log().splitlines()[-30:])
            )
        time.sleep(0.02)


@contextlib.contextmanager
def draining(notify: NotifySocket) -> Iterator[None]:
    """Read what the daemon tells systemd, in a thread, as systemd does: the daemon's
    notifications block once a dozen are left unread (net.unix.max_dgram_qlen)."""
    done = threading.Event()

    def drain() -> None:
        while not done.wait(0.2):
            notify.drain()
            notify.messages.clear()

    thread = threading.Thread(target=drain, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join(timeout=5)


def counter(metrics_text: str, name: str) -> float:
    """The sum of a metric's samples in an exposition."""
    total = 0.0
    for line in metrics_text.splitlines():
        if line.startswith(name) and line[len(name)] in " {":
            total += float(line.rsplit(" ", 1)[1])
    return total

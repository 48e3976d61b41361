"""Half an hour of healthy traffic, compressed twentyfold: no false trip; then real faults trip.

Every duration of a real profile is divided by COMPRESSION: watchdogs run every 50 ms instead
of every second, the SPX tick breach of 15 s becomes 750 ms, and so on. The traffic goes right
up to the edges of the thresholds (tick gaps up to 80% of the breach, locks held up to 80% of
max_hold with TTLs up to 80% of max_ttl, margin up to 0.299 against a breach of 0.30) but never
across them, with random jitter from a seeded generator. Then each fault is injected for real,
one after the other, and each must trip its own actuator.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from redis import Redis

from testbed.config_blocks import redis_flag, ticks_watchdog
from testbed.daemon_process import Daemon
from testbed.notify_socket import NotifySocket
from testbed.redis_server import RedisServer
from testbed.waiting import wait_until
from tests.faults.stack import (
    BREAKER,
    BREAKER_KEY,
    assert_no_crash,
    longest_keepalive_gap,
    sample,
    scrape,
    write_config,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

COMPRESSION = 20
HEALTHY_S = 30 * 60 / COMPRESSION  # 90 s of wall time
EDGE = 0.8  # how close to a threshold the healthy traffic goes

INTERVAL_S = 1.0 / COMPRESSION
TICK_WARN_S, TICK_BREACH_S = 10.0 / COMPRESSION, 15.0 / COMPRESSION
LOCK_MAX_TTL_S, LOCK_MAX_HOLD_S = 30.0 / COMPRESSION, 60.0 / COMPRESSION
MARGIN_WARN, MARGIN_BREACH = 0.25, 0.30
LOCK_KEY, MARGIN_KEY = "stream:lock", "acct:margin"
LOCK_FLAG, MARGIN_FLAG = "ops:lock", "ops:margin"
PARTS = ("ticks", "lock", "margin")  # the traffic's parts, each stopped on its own


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}ms"


FLAGS = redis_flag("lock_flag", LOCK_FLAG, None, "reduce_only") + redis_flag(
    "margin_flag", MARGIN_FLAG, None, "reduce_only"
)
TICKS = ticks_watchdog(
    name="ticks", warn=ms(TICK_WARN_S), breach=ms(TICK_BREACH_S), interval=ms(INTERVAL_S)
)
LOCK_AND_MARGIN = f"""
[[watchdogs]]
name = "locks"
kind = "lock_ttl"
keys = ["{LOCK_KEY}"]
max_ttl = "{ms(LOCK_MAX_TTL_S)}"
max_hold = "{ms(LOCK_MAX_HOLD_S)}"
interval = "{ms(INTERVAL_S)}"
trip_after = 2
on_breach = ["lock_flag"]

[[watchdogs]]
name = "margin"
kind = "margin"
redis_key = "{MARGIN_KEY}"
used = "used"
equity = "equity"
warn = {MARGIN_WARN}
breach = {MARGIN_BREACH}
interval = "{ms(INTERVAL_S)}"
trip_after = 2
on_breach = ["margin_flag"]
"""
WATCHDOGS = FLAGS + TICKS + LOCK_AND_MARGIN


@dataclass
class Edges:
    """How close the healthy traffic came to each threshold, as a share of it."""

    tick_gap: float = 0.0
    lock_ttl: float = 0.0
    lock_hold: float = 0.0
    margin: float = 0.0
    writes: int = 0


@dataclass
class Lock:
    owner: str = ""
    since: float = 0.0
    release_at: float = 0.0


@dataclass
class HealthyTraffic:
    """A feed, a lock owner and a broker account, writing in one thread on random
    schedules; each part can be stopped on its own to inject its fault."""

    client: Redis
    rng: random.Random
    edges: Edges = field(default_factory=Edges)
    running: dict[str, bool] = field(default_factory=lambda: dict.fromkeys(PARTS, True))
    lock: Lock = field(default_factory=Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> HealthyTraffic:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def stop(self, part: str | None = None) -> None:
        """Stop one part (its fault) or everything."""
        if part is not None:
            self.running[part] = False
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        due = dict.fromkeys(PARTS, time.monotonic())
        last_tick = time.monotonic()
        while not self._stop.is_set():
            part = min(due, key=due.__getitem__)
            self._stop.wait(max(0.0, due[part] - time.monotonic()))
            now = time.monotonic()
            if not self.running[part]:
                due[part] = now + 3600
                continue
            if part == "ticks":
                self.edges.tick_gap = max(self.edges.tick_gap, (now - last_tick) / TICK_BREACH_S)
                last_tick = now
                self._tick()
                # Gaps up to the edge: mostly short, sometimes right at it.
                edge = EDGE * TICK_BREACH_S
                due[part] = now + (edge if self.rng.random() < 0.05 else self.rng.uniform(0, edge))
            elif part == "lock":
                due[part] = now + self._lock(now)
            else:
                self._margin()
                due[part] = now + self.rng.uniform(0.01, 0.2)
            self.edges.writes += 1

    def _tick(self) -> None:
        stamp = str(int(time.time() * 1000))
        self.client.mset({"ticks:last:SPX": stamp, "ticks:last:ES": stamp})

    def _lock(self, now: float) -> float:
        """Acquire, renew, release: TTLs and holds up to the edges. Returns when to act next."""
        lock = self.lock
        ttl_s = self.rng.uniform(0.1, EDGE * LOCK_MAX_TTL_S)
        self.edges.lock_ttl = max(self.edges.lock_ttl, ttl_s / LOCK_MAX_TTL_S)
        if lock.owner and now >= lock.release_at:
            self.edges.lock_hold = max(self.edges.lock_hold, (now - lock.since) / LOCK_MAX_HOLD_S)
            self.client.delete(LOCK_KEY)
            lock.owner = ""
            return self.rng.uniform(0, 0.2)
        if not lock.owner:
            lock.owner, lock.since = f"worker-{self.rng.randrange(10**6)}", now
            lock.release_at = now + self.rng.uniform(0.05, EDGE * LOCK_MAX_HOLD_S)
        self.client.set(LOCK_KEY, lock.owner, px=int(ttl_s * 1000))  # acquire or renew
        return min(ttl_s / 2, max(0.0, lock.release_at - now))

    def _margin(self) -> None:
        ratio = MARGIN_BREACH - 0.001 if self.rng.random() < 0.05 else self.rng.uniform(0.05, 0.29)
        self.edges.margin = max(self.edges.margin, ratio / MARGIN_BREACH)
        equity = self.rng.uniform(50_000, 150_000)
        self.client.hset(MARGIN_KEY, mapping={"used": f"{ratio * equity:.4f}", "equity": equity})


def runs(metrics_port: int) -> dict[str, float]:
    text = scrape(metrics_port)
    return {
        name: sample(text, "supervisor_watchdog_duration_seconds_count", watchdog=name) or 0.0
        for name in ("ticks", "locks", "margin")
    }


def test_thirty_compressed_minutes_of_healthy_traffic_then_every_real_fault_trips(
    tmp_path: Path, private_redis: RedisServer, notify_socket: NotifySocket
) -> None:
    seed = random.randrange(10**6)
    setup = write_config(tmp_path, private_redis.url, BREAKER + WATCHDOGS)
    client = Redis.from_url(private_redis.url, socket_timeout=2)
    traffic = HealthyTraffic(Redis.from_url(private_redis.url), random.Random(seed)).start()
    daemon = Daemon(setup.config, notify_socket)
    try:
        notify_socket.wait_for("READY=1", timeout_s=15)
        started_at = time.time()
        time.sleep(HEALTHY_S)
        healthy = runs(setup.metrics_port)
        log = daemon.log()
        warns = {n: len(re.findall(rf"watchdog={n} status=WARN \(was OK\)", log)) for n in healthy}
        gap = longest_keepalive_gap(notify_socket, started_at, time.time())
        edges = traffic.edges
        print(
            f"healthy load (seed {seed}): {HEALTHY_S:.0f}s = 30 min compressed x{COMPRESSION};"
            f" runs {healthy}; WARN episodes {warns}; {edges.writes} writes; edges reached:"
            f" tick gap {edges.tick_gap:.0%} of breach, lock TTL {edges.lock_ttl:.0%} of"
            f" max_ttl, hold {edges.lock_hold:.0%} of max_hold, margin {edges.margin:.1%} of"
            f" breach; longest WATCHDOG=1 gap {gap:.2f}s"
        )
        assert "action actuator=" not in log, f"a false trip (seed {seed})"
        assert "status=BREACH" not in log and "status=CRITICAL" not in log, f"seed {seed}"
        for flag in (BREAKER_KEY, LOCK_FLAG, MARGIN_FLAG):
            assert client.get(flag) is None, flag
        assert all(count >= 0.6 * HEALTHY_S / INTERVAL_S for count in healthy.values()), healthy
        assert gap < 2.5
        assert edges.tick_gap >= 0.75 and edges.margin >= 0.99  # the edges were reached

        latencies = inject_every_fault(client, traffic)
        print(f"real faults, injection to trip: {latencies}")
        assert client.hget("sup:state", "trading_state") == b"REDUCE_ONLY"
        assert_no_crash(daemon)
    finally:
        traffic.stop()
        client.close()
        assert daemon.terminate() == 0


def inject_every_fault(client: Redis, traffic: HealthyTraffic) -> dict[str, str]:
    """A lock without expiry, a margin over breach, a stopped feed: each trips its own
    actuator. Returns the injection-to-trip latency of each."""
    latencies = {}
    traffic.stop("lock")
    time.sleep(0.3)  # the lock thread's last write has landed
    injected = time.monotonic()
    client.set(LOCK_KEY, "worker-crashed-holding-it")  # no PX: never expires
    wait_until(lambda: client.get(LOCK_FLAG) is not None, 5, "the orphaned lock's trip")
    latencies["lock without TTL"] = f"{time.monotonic() - injected:.3f}s"

    traffic.stop("margin")
    time.sleep(0.3)
    injected = time.monotonic()
    client.hset(MARGIN_KEY, mapping={"used": "45000", "equity": "100000"})  # 0.45 > 0.30
    wait_until(lambda: client.get(MARGIN_FLAG) is not None, 5, "the margin's trip")
    latencies["margin over breach"] = f"{time.monotonic() - injected:.3f}s"

    traffic.stop("ticks")
    injected = time.monotonic()
    wait_until(lambda: client.get(BREAKER_KEY) is not None, 5, "the stale feed's trip")
    tripped = json.loads(client.get(BREAKER_KEY) or "{}")
    assert tripped["state"] == "TRIPPED"
    latencies["stopped feed"] = f"{time.monotonic() - injected:.3f}s (breach {TICK_BREACH_S}s)"
    return latencies

"""The fault and how late its kill arrives, per system: a feed writing epoch-ms ticks to a
Redis key every 100 ms stops; the figure is the kill's arrival at that system's endpoint
minus the moment the tick's age crossed 2 s (the last tick + 2 s).

Each system watches feeds of its own, all fed all the time, so that a fault is one system's
alone while every system runs; trials go round-robin (this daemon, Prometheus tuned, monit,
this daemon, ...) so that the machine's noise falls on all alike, each after a random delay
of up to 1 s, so that the fault lands at any point of a system's 1 s cycle."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

from benchmarks.stack import tick_key
from testbed.bulk_feed import BulkFeed
from testbed.killswitch_server import KillSwitchServer, Recorded

BREACH_S = 2.0
FEED_PERIOD_S = 0.1


@dataclass
class Watched:
    """One system under comparison: the feeds it watches (its faults take them in turn) and
    the endpoint its kills arrive at."""

    name: str
    feeds: list[str]
    kill: KillSwitchServer
    rest_s: float  # after a feed is fed again, before it may fail again (the system recovers)
    restored_at: dict[str, float] = field(default_factory=dict)
    turn: int = 0

    def next_feed(self) -> str:
        feed = self.feeds[self.turn % len(self.feeds)]
        self.turn += 1
        time.sleep(max(0.0, self.restored_at.get(feed, 0.0) + self.rest_s - time.monotonic()))
        return feed


def fault(ticks: BulkFeed, watched: Watched, feed: str, timeout_s: float) -> float:
    """Stop `feed`, wait for its kill, feed it again: seconds from the 2 s crossing to the
    kill's arrival."""
    calls = len(watched.kill.activation_requests())
    last_tick = ticks.drop(tick_key(feed))
    try:
        arrived = kill_arrival(watched.kill, calls, feed, timeout_s)
    finally:
        ticks.restore(tick_key(feed))
        watched.restored_at[feed] = time.monotonic()
    return arrived - (last_tick + BREACH_S)


def kill_arrival(kill: KillSwitchServer, calls: int, feed: str, timeout_s: float) -> float:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for request in kill.activation_requests()[calls:]:
            if names_feed(request, feed):
                return request.at
        time.sleep(0.01)
    raise TimeoutError(f"no kill for feed {feed} within {timeout_s} s")


def names_feed(request: Recorded, feed: str) -> bool:
    """Alertmanager's webhook carries the alert's labels: the kill must be for this feed. The
    daemon's and monit's kills are for their one feed."""
    try:
        document = request.json()
    except ValueError:
        return True
    alerts = document.get("alerts") if isinstance(document, dict) else None
    if not isinstance(alerts, list):
        return True
    return any(alert.get("labels", {}).get("feed") == feed for alert in alerts)


def round_robin(
    ticks: BulkFeed, systems: list[Watched], count: int, rng: random.Random
) -> dict[str, list[float]]:
    late: dict[str, list[float]] = {watched.name: [] for watched in systems}
    for _ in range(count):
        for watched in systems:
            feed = watched.next_feed()
            time.sleep(rng.uniform(0.0, 1.0))
            late[watched.name].append(fault(ticks, watched, feed, timeout_s=30))
    return late


def staggered(
    ticks: BulkFeed, watched: Watched, index: int, count: int, cycle_s: float, timeout_s: float
) -> float:
    """One of `count` faults started in parallel (a system with minutes-long cycles), the
    `index`th a `cycle_s / count` later than the one before: together they sample its cycle."""
    time.sleep(index * cycle_s / count)
    return fault(ticks, watched, watched.feeds[index], timeout_s)

"""Fault to kill: one instrument's feed stops, and the real HTTP kill endpoint
(testbed/killswitch_server.py) records when the kill arrives, past the moment the tick's age
crossed `breach`. Trials run one after another against one daemon (clear_after 1: the fed
instrument clears the incident, and the next fault opens a new one, which calls again).

    .venv/bin/python -m benchmarks.kill_latency [--trials 25] [--big-trials 5]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

from benchmarks.report import Row, median, ms, percentile, render
from benchmarks.stack import Running, Thresholds, instruments, running_daemon, tick_key
from testbed.killswitch_server import Behaviour, KillSwitchServer
from testbed.redis_server import RedisServer, running_redis
from testbed.waiting import wait_until

# Thresholds above a feed round plus an interval, so that healthy ticks cause no deadline
# re-runs and what is measured is the fault's path. (With `warn` below the interval, every
# feed round comes due before the next check and is re-read at once: a fault can then land
# behind one of those re-reads, a few ms at 1,000 instruments, ~0.1 s at 100,000.)
SMALL = Thresholds(warn="2s", breach="3s")  # 1,000 instruments fed every 200 ms
BIG = Thresholds(warn="3s", breach="4s")  # 100,000 fed every second


def seconds_of(duration: str) -> float:
    return (
        float(duration.removesuffix("ms")) / 1000
        if duration.endswith("ms")
        else float(duration.removesuffix("s"))
    )


def trials(running: Running, kill: KillSwitchServer, names: list[str], count: int) -> list[float]:
    """Seconds from the threshold crossing to the kill's arrival, per fault."""
    breach_s = seconds_of(running.thresholds.breach)
    late = []
    for trial in range(count):
        victim = tick_key(names[(trial * 7919) % len(names)])
        calls = len(kill.activation_requests())
        last_tick = running.feed.drop(victim)
        wait_until(partial(called_more_than, kill, calls), breach_s + 10, "the kill")
        arrived = kill.activation_requests()[calls].at
        late.append(arrived - (last_tick + breach_s))
        running.feed.restore(victim)
        time.sleep(running.feed.period_s + 1.2)  # fed and judged OK again: the incident clears
    return late


def called_more_than(kill: KillSwitchServer, calls: int) -> bool:
    return len(kill.activation_requests()) > calls


def measure(
    server: RedisServer, count: int, thresholds: Thresholds, feed_s: float, runs: int
) -> list[float]:
    # Keep-alive, as a production endpoint has: the test server otherwise starts a thread
    # per connection, whose start-up (a few ms on a busy machine) is not the daemon's.
    with tempfile.TemporaryDirectory() as tmp, KillSwitchServer(Behaviour(keep_alive=True)) as kill:
        names = instruments(count)
        # The endpoint's thread shares this process with the feed: let it have the GIL at
        # once when a request comes (Python hands it over every 5 ms by default).
        switch_s = sys.getswitchinterval()
        sys.setswitchinterval(0.0005)
        try:
            with running_daemon(Path(tmp), server, names, thresholds, feed_s, kill) as running:
                time.sleep(feed_s + 1)
                return trials(running, kill, names, runs)
        finally:
            sys.setswitchinterval(switch_s)


def rows(small_trials: int = 25, big_trials: int = 5) -> list[Row]:
    with tempfile.TemporaryDirectory() as tmp, running_redis(Path(tmp)) as server:
        small = measure(server, 1_000, SMALL, 0.2, small_trials)
        big = measure(server, 100_000, BIG, 1.0, big_trials) if big_trials else []
    found = [
        Row(
            f"fault -> kill received, 1,000 instruments: p50 ({len(small)} trials)",
            "<= 10 ms",
            f"{ms(median(small))} (min {ms(min(small))})",
            median(small) <= 0.010 and min(small) >= 0,
        ),
        Row(
            "fault -> kill received, 1,000 instruments: p99",
            "<= 15 ms",
            f"{ms(percentile(small, 0.99))}",
            percentile(small, 0.99) <= 0.015,
        ),
    ]
    if big:
        found.append(
            Row(
                f"fault -> kill received, 100,000 instruments: p99 ({len(big)} trials)",
                "<= 50 ms",
                f"{ms(percentile(big, 0.99))} (p50 {ms(median(big))}, min {ms(min(big))})",
                percentile(big, 0.99) <= 0.050 and min(big) >= 0,
            )
        )
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=25)
    parser.add_argument("--big-trials", type=int, default=5)
    args = parser.parse_args()
    print(render(rows(args.trials, args.big_trials)))


if __name__ == "__main__":
    main()

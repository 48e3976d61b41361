"""The daemon as a real subprocess watching 10,000 or 100,000 instruments, interval 1 s,
fed healthily (every instrument every second): its CPU share and RSS from /proc over a
window, whether every check completed, /metrics answer times, and (100,000) whether one
instrument left unfed trips the breaker.

    .venv/bin/python -m benchmarks.daemon_load [--seconds 20]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from redis import Redis

from benchmarks.report import Row, median, ms, render, usage_over
from benchmarks.stack import (
    BREAKER_KEY,
    Running,
    Thresholds,
    counter,
    instruments,
    running_daemon,
    tick_key,
)
from testbed.redis_server import RedisServer, running_redis

# Healthy ticks are at most ~2 s old at a check: no deadline re-runs, one full read a second.
THRESHOLDS = Thresholds(warn="4s", breach="6s")
LIMITS = {10_000: (5.0, 100.0), 100_000: (30.0, 250.0)}  # % of a core, MB
METRICS_LIMIT_S = 0.100


def measure(server: RedisServer, count: int, seconds: float) -> list[Row]:
    names = instruments(count)
    victim = names[count // 2] if count >= 100_000 else None
    cpu_limit, rss_limit = LIMITS[count]
    with (
        tempfile.TemporaryDirectory() as tmp,
        running_daemon(Path(tmp), server, names, THRESHOLDS, feed_period_s=1.0) as running,
    ):
        if victim is not None:
            running.feed.drop(tick_key(victim))  # its last tick ages from now on
        before = running.metrics()[0]
        usage = usage_over(running.pid, seconds)
        scrapes = [running.metrics() for _ in range(10)]
        after = scrapes[-1][0]
        rows = [
            Row(
                f"daemon, {count:,} instruments, interval 1 s: CPU ({usage.seconds:.0f} s)",
                f"<= {cpu_limit:g} % of a core",
                f"{usage.cpu_percent:.1f} %",
                usage.cpu_percent <= cpu_limit,
            ),
            Row(
                f"daemon, {count:,} instruments: RSS (largest sample)",
                f"<= {rss_limit:g} MB",
                f"{usage.rss_max_mb:.0f} MB",
                usage.rss_max_mb <= rss_limit,
            ),
            completed(count, running, before, after),
        ]
        if victim is not None:
            rows.append(tripped(server, victim))
            took = [seconds for _, seconds in scrapes]
            rows.append(
                Row(
                    f"/metrics at {count:,} instruments (default subject_metrics; 10 scrapes)",
                    f"<= {ms(METRICS_LIMIT_S)}",
                    f"median {ms(median(took))}, max {ms(max(took))}, {len(after) // 1024} kB",
                    max(took) <= METRICS_LIMIT_S,
                )
            )
    return rows


def completed(count: int, running: Running, before: str, after: str) -> Row:
    runs = counter(after, "supervisor_watchdog_duration_seconds_count") - counter(
        before, "supervisor_watchdog_duration_seconds_count"
    )
    cut_offs = counter(after, "supervisor_watchdog_check_cut_offs_total")
    in_log = running.daemon.log().count("cut off")
    durations = counter(after, "supervisor_watchdog_duration_seconds_sum") - counter(
        before, "supervisor_watchdog_duration_seconds_sum"
    )
    mean = durations / runs if runs else float("nan")
    return Row(
        f"daemon, {count:,} instruments: every check completed",
        "no cut-off",
        f"{runs:.0f} checks, {cut_offs:.0f} cut off ({in_log} in the log), mean {ms(mean)}",
        cut_offs == 0 and in_log == 0 and runs > 0,
    )


def tripped(server: RedisServer, victim: str) -> Row:
    raw = Redis.from_url(server.url).get(BREAKER_KEY)
    state = json.loads(raw) if raw else {}
    ok = state.get("state") == "TRIPPED" and victim in state.get("reason", "")
    shown = f"tripped: {state.get('reason', '')[:60]}..." if raw else "not tripped"
    return Row("daemon, 100,000 instruments: one stale instrument", "tripped", shown, ok)


def rows(seconds: float = 20.0, counts: tuple[int, ...] = (10_000, 100_000)) -> list[Row]:
    with tempfile.TemporaryDirectory() as tmp, running_redis(Path(tmp)) as server:
        found: list[Row] = []
        for count in counts:
            found += measure(server, count, seconds)
            time.sleep(1)
        return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20.0)
    print(render(rows(parser.parse_args().seconds)))


if __name__ == "__main__":
    main()

"""How long after a feed stops does the breaker trip? Prints figures; asserts nothing.

Runs the real daemon against a private redis-server, feeds two instruments every 100 ms,
stops the feed, and reads `tripped_at` from the breaker. Without deadline re-runs, a check
every `interval` would notice a crossed threshold on average interval/2 late (up to a whole
interval); with them, the first BREACH lands milliseconds after the threshold.

    .venv/bin/python -m benchmarks.detection_latency [--trials 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from redis import Redis

from testbed.daemon_process import Daemon, write_config
from testbed.redis_server import RedisServer, running_redis
from testbed.tick_feed import TickFeed
from testbed.waiting import wait_until

BREACH_S, INTERVAL_S = 1.0, 1.0


def one_trial(directory: Path, server: RedisServer, trip_after: int) -> float:
    client = Redis.from_url(server.url)
    client.flushall()
    config, _ = write_config(
        directory, server.url, warn="500ms", breach="1s", interval="1s", trip_after=trip_after
    )
    feed = TickFeed(server.url).start()
    daemon = Daemon(config, None)
    try:
        time.sleep(1.5)
        last_tick = feed.stop()
        wait_until(lambda: client.exists("circuit_breaker:state") == 1, 15, "the trip")
        raw = client.get("circuit_breaker:state")
        assert raw is not None
        return float(json.loads(raw)["tripped_at"]) - last_tick - BREACH_S
    finally:
        feed.stop()
        daemon.terminate()
        client.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=5)
    trials = parser.parse_args().trials
    with tempfile.TemporaryDirectory() as tmp, running_redis(Path(tmp)) as server:
        for trip_after in (1, 2):
            # A fresh state_dir per trial: the latch of the last trial would (rightly)
            # restore its trip on the next start.
            late = [
                one_trial(Path(tempfile.mkdtemp(dir=tmp)), server, trip_after)
                for _ in range(trials)
            ]
            polling_ms = INTERVAL_S * 500 + (trip_after - 1) * INTERVAL_S * 1000
            print(
                f"trip_after={trip_after} breach={BREACH_S}s interval={INTERVAL_S}s: tripped"
                f" {statistics.median(late) * 1000:.1f} ms after the threshold (median),"
                f" max {max(late) * 1000:.1f} ms, {trials} trials;"
                f" interval-only polling would average {polling_ms:.0f} ms"
            )


if __name__ == "__main__":
    main()

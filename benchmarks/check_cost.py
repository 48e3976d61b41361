"""What one tick_freshness check costs as the instrument list grows. Prints figures.

All instruments are read in one pipeline, so the cost per instrument should fall as the
list grows (one network round trip shared by all). Compare the ratios within one run.

    .venv/bin/python -m benchmarks.check_cost
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from redis.asyncio import Redis

from supervisor.watchdogs.tick_freshness import TickFreshness, TickFreshnessConfig
from testbed.redis_server import running_redis

REPEATS = 200


async def measure(url: str, count: int) -> float:
    client = Redis.from_url(url)
    instruments = [f"I{i}" for i in range(count)]
    now = time.time()
    await client.mset({f"ticks:last:{i}": str(now) for i in instruments})
    config = TickFreshnessConfig.model_validate(
        {"name": "b", "kind": "tick_freshness", "key": "ticks:last:{instrument}"}
        | {"instruments": instruments, "breach": "15s"}
    )
    watchdog = TickFreshness(config, client)
    await watchdog.check(now, None)  # warm the connection
    started = time.perf_counter()
    for _ in range(REPEATS):
        await watchdog.check(time.time(), None)
    await client.aclose()
    return (time.perf_counter() - started) / REPEATS


async def run(url: str) -> None:
    base = None
    for count in (1, 10, 100, 1000):
        seconds = await measure(url, count)
        base = base or seconds
        print(
            f"{count:5d} instruments: {seconds * 1000:7.3f} ms per check,"
            f" {seconds / count * 1e6:8.1f} us per instrument,"
            f" {seconds / base:6.1f}x the 1-instrument check"
        )


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, running_redis(Path(tmp)) as server:
        asyncio.run(run(server.url))


if __name__ == "__main__":
    main()

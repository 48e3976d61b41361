"""One tick_freshness evaluation (read and judge every instrument) against a real
redis-server, as the daemon runs it (`run_check`): the median of several.

Also run, in a subprocess, without hiredis (redis-py's pure-Python reply parser), to show
what the dependency is worth.

    .venv/bin/python -m benchmarks.evaluation [--json] [--repeats 9]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from redis.asyncio import Redis
from redis.utils import HIREDIS_AVAILABLE

from benchmarks.report import Row, median, ms
from benchmarks.stack import instruments, tick_key
from supervisor.watchdogs.base import run_check
from supervisor.watchdogs.tick_freshness import TickFreshness, TickFreshnessConfig
from testbed.redis_server import running_redis

TARGETS_S = {10_000: 0.020, 100_000: 0.200}
NO_HIREDIS = "import sys, runpy; sys.modules['hiredis'] = None; " + (
    "runpy.run_module('benchmarks.evaluation', run_name='__main__')"
)


async def measure(url: str, count: int, repeats: int) -> float:
    """Median seconds of one evaluation of `count` fresh instruments (one of them stale)."""
    client = Redis.from_url(url)
    try:
        names = instruments(count)
        now = time.time()
        for start in range(0, count, 10_000):
            chunk = names[start : start + 10_000]
            await client.mset({tick_key(n): str(int(now * 1000)) for n in chunk})
        await client.set(tick_key(names[count // 2]), str(int((now - 60) * 1000)))
        config = TickFreshnessConfig.model_validate(
            {"name": "bench", "kind": "tick_freshness", "key": "ticks:last:{instrument}"}
            | {"instruments": names, "warn": "10s", "breach": "15s", "interval": "1s"}
        )
        watchdog = TickFreshness(config, client)
        await run_check(watchdog, None, time.time())  # connect, warm up
        took = []
        for _ in range(repeats):
            started = time.perf_counter()
            evaluation = await run_check(watchdog, None, time.time())
            took.append(time.perf_counter() - started)
            assert not evaluation.cut_off and len(evaluation.verdicts.unusual) == 1
        return median(took)
    finally:
        await client.aclose()


def figures(counts: tuple[int, ...], repeats: int) -> dict[int, float]:
    with tempfile.TemporaryDirectory() as tmp, running_redis(Path(tmp)) as server:
        return {count: asyncio.run(measure(server.url, count, repeats)) for count in counts}


def rows(repeats: int = 9, counts: tuple[int, ...] = (10_000, 100_000)) -> list[Row]:
    measured = figures(counts, repeats)
    result = [
        Row(
            f"one evaluation, {count:,} instruments (median of {repeats})",
            f"<= {ms(TARGETS_S[count])}",
            f"{ms(seconds)} ({seconds / count * 1e6:.2f} us/instrument)",
            seconds <= TARGETS_S[count],
        )
        for count, seconds in measured.items()
    ]
    without = subprocess.run(
        [sys.executable, "-c", NO_HIREDIS, "--json", "--repeats", str(max(3, repeats // 3))],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    found = json.loads(without.stdout)
    assert found.pop("hiredis") is False, "hiredis was not left out"
    for count, seconds in found.items():
        with_it = measured[int(count)]
        result.append(
            Row(
                f"one evaluation, {int(count):,} instruments, without hiredis",
                "",
                f"{ms(seconds)} ({seconds / with_it:.1f}x with hiredis)",
                None,
            )
        )
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--json", action="store_true", help="print {count: seconds}")
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    if args.json:
        found = figures((10_000, 100_000), args.repeats)
        print(json.dumps({"hiredis": HIREDIS_AVAILABLE} | {str(c): s for c, s in found.items()}))
        return
    from benchmarks.report import render

    print(render(rows(args.repeats)))


if __name__ == "__main__":
    main()

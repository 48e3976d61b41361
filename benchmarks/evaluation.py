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
from dataclasses import dataclass
from pathlib import Path

from redis.asyncio import Redis
from redis.utils import HIREDIS_AVAILABLE

from benchmarks.report import Figures, Row, median, ms
from benchmarks.stack import instruments, tick_key
from supervisor.watchdogs.base import run_check
from supervisor.watchdogs.tick_freshness import TickFreshness, TickFreshnessConfig
from testbed.redis_server import running_redis

TARGETS_S = {10_000: 0.020, 100_000: 0.200}
NO_HIREDIS = "import sys, runpy; sys.modules['hiredis'] = None; " + (
    "runpy.run_module('benchmarks.evaluation', run_name='__main__')"
)


LAYOUTS: dict[str, dict[str, object]] = {
    "plain": {},
    "field": {"field": "ts"},
    "json_field": {"json_field": "meta.ts"},
    "stream": {"stream": True},
}


async def write_ticks(client: Redis, names: list[str], layout: str, now: float) -> None:
    """A fresh tick for every instrument, one of them a minute old, in `layout`."""
    for start in range(0, len(names), 5_000):
        async with client.pipeline(transaction=False) as pipe:
            for n in names[start : start + 5_000]:
                at = now - 60 if n == names[len(names) // 2] else now
                if layout == "plain":
                    pipe.set(tick_key(n), str(int(at * 1000)))
                elif layout == "field":
                    pipe.hset(tick_key(n), mapping={"ts": f"{at:.3f}", "px": "1"})
                elif layout == "json_field":
                    pipe.set(tick_key(n), json.dumps({"meta": {"ts": int(at * 1000)}}))
                else:
                    pipe.xadd(tick_key(n), {"px": "1"}, id=f"{int(at * 1000)}-0")
            await pipe.execute()


@dataclass(frozen=True)
class Measured:
    seconds: float  # median of one evaluation
    slowest_command_us: float  # the largest usec_per_call (an average) of a read command
    slow_log: int  # commands of 1 ms or more while measuring (SLOWLOG)
    slow_max_us: int  # the longest of those
    calls: int  # read commands while measuring


async def measure(url: str, count: int, repeats: int, layout: str = "plain") -> Measured:
    """One evaluation of `count` instruments (one of them stale): the median, and what the
    commands cost Redis meanwhile (INFO commandstats, SLOWLOG at 1 ms)."""
    client = Redis.from_url(url)
    try:
        await client.flushall()
        names = instruments(count)
        await write_ticks(client, names, layout, time.time())
        config = TickFreshnessConfig.model_validate(
            {"name": "bench", "kind": "tick_freshness", "key": "ticks:last:{instrument}"}
            | {"instruments": names, "warn": "10s", "breach": "15s", "timeout": "10s"}
            | LAYOUTS[layout]
        )
        watchdog = TickFreshness(config, client)
        await run_check(watchdog, None, time.time())  # connect, warm up
        await client.config_set("slowlog-log-slower-than", 1000)
        await client.config_set("slowlog-max-len", 100_000)
        await client.slowlog_reset()
        await client.config_resetstat()
        took = []
        for _ in range(repeats):
            started = time.perf_counter()
            evaluation = await run_check(watchdog, None, time.time())
            took.append(time.perf_counter() - started)
            assert not evaluation.cut_off and len(evaluation.verdicts.unusual) == 1
        stats = {k: v for k, v in (await client.info("commandstats")).items() if k in READS}
        slowest = max(float(v["usec_per_call"]) for v in stats.values())
        slow = [int(entry["duration"]) for entry in await client.slowlog_get(100_000)]
        calls = sum(int(v["calls"]) for v in stats.values())
        return Measured(median(took), slowest, len(slow), max(slow, default=0), calls)
    finally:
        await client.aclose()


READS = {"cmdstat_mget", "cmdstat_eval", "cmdstat_get"}


def figures(counts: tuple[int, ...], repeats: int, layout: str = "plain") -> dict[int, Measured]:
    with tempfile.TemporaryDirectory() as tmp, running_redis(Path(tmp)) as server:
        return {c: asyncio.run(measure(server.url, c, repeats, layout)) for c in counts}


def rows(
    repeats: int = 9,
    counts: tuple[int, ...] = (1_000, 10_000, 100_000),
    layouts: bool = True,
    into: Figures | None = None,
) -> list[Row]:
    measured = figures(counts, repeats)
    if into is not None:
        into.evaluation_s.update({count: m.seconds for count, m in measured.items()})
    result = [
        Row(
            f"one evaluation, {count:,} instruments (median of {repeats})",
            f"<= {ms(TARGETS_S[count])}" if count in TARGETS_S else "",
            f"{ms(m.seconds)} ({m.seconds / count * 1e6:.2f} us/instrument)",
            m.seconds <= TARGETS_S[count] if count in TARGETS_S else None,
        )
        for count, m in measured.items()
    ]
    big = measured[max(counts)]
    result.append(
        Row(
            f"Redis: a read command during {max(counts):,}-instrument checks",
            "< 1 ms",
            f"MGET {big.slowest_command_us:.0f} us per call on average; SLOWLOG >= 1 ms:"
            f" {big.slow_log} of {big.calls}"
            + (f" (max {big.slow_max_us} us)" if big.slow_log else ""),
            big.slowest_command_us < 1000 and big.slow_log <= big.calls // 100,
        )
    )
    for layout in ("field", "json_field", "stream") if layouts else ():
        m = figures((100_000,), 3, layout)[100_000]
        result.append(
            Row(
                f"one evaluation, 100,000 instruments, {layout} layout (median of 3)",
                "",
                f"{ms(m.seconds)}; {m.slowest_command_us:.0f} us per command,"
                f" SLOWLOG >= 1 ms: {m.slow_log} of {m.calls}",
                None,
            )
        )
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
        with_it = measured[int(count)].seconds
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
        seconds = {str(count): m.seconds for count, m in found.items()}
        print(json.dumps({"hiredis": HIREDIS_AVAILABLE} | seconds))
        return
    from benchmarks.report import render

    print(render(rows(args.repeats)))


if __name__ == "__main__":
    main()

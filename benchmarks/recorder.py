"""The flight recorder's cost: bytes on disk per subject-sample and CPU, at 1,000 and
100,000 instruments judged every second by the real tick_freshness judge (supervisor/
watchdogs/tick_judge.py) over a simulated feed: most instruments tick several times a
second, a fifth of them every few seconds, a few go stale now and then.

The verdicts are made first; the figure is the CPU the recorder adds (the loop's hand-over
plus its writer thread), per second of recording, as a share of one core.

    .venv/bin/python -m benchmarks.recorder [--seconds 600] [--large-seconds 60]
"""

from __future__ import annotations

import argparse
import math
import random
import tempfile
import time
from pathlib import Path

from supervisor.config.settings import Settings
from supervisor.model import Verdicts
from supervisor.recorder.catalog import ALL_SUBJECTS_UP_TO
from supervisor.recorder.writer import Recorder
from supervisor.watchdogs.tick_judge import Reading, TickJudge

START = 1_790_000_000.0


def settings_for(state_dir: Path, count: int) -> Settings:
    return Settings.model_validate(
        {
            "supervisor": {"state_dir": str(state_dir)},
            "actuators": {"breaker": {"kind": "redis_breaker", "level": "reduce_only"}},
            "watchdogs": [
                {
                    "name": "ticks",
                    "kind": "tick_freshness",
                    "key": "ticks:{instrument}",
                    "instruments": [f"I{i:06d}" for i in range(count)],
                    "warn": "5s",
                    "breach": "10s",
                    "on_breach": ["breaker"],
                }
            ],
        }
    )


def feed(count: int, seconds: int, seed: int = 7, start: float = START) -> list[list[bytes]]:
    """Each second's replies: the last tick's epoch seconds (ms precision) per instrument."""
    rng = random.Random(seed)
    rates = [5.0 if rng.random() < 0.8 else 0.3 for _ in range(count)]
    last = [start - rng.random() for _ in range(count)]
    replies = []
    for second in range(seconds):
        now = start + second
        stalled = set(rng.sample(range(count), max(1, count // 500))) if second % 60 > 50 else ()
        for i, rate in enumerate(rates):
            if i not in stalled and rng.random() < 1 - math.exp(-rate):
                last[i] = now - rng.random() * min(1.0, 1 / rate)
        replies.append([f"{t:.3f}".encode() for t in last])
    return replies


def judged(settings: Settings, replies: list[list[bytes]]) -> list[Verdicts]:
    config = settings.watchdogs[0]
    judge = TickJudge(config)  # type: ignore[arg-type]
    runs = []
    for second, reply in enumerate(replies):
        now = START + second
        counted, not_ok = judge.judge(range(len(reply)), reply, now, None)
        runs.append(judge.verdicts(Reading(counted, not_ok, None), now))
    return runs


def measure(count: int, seconds: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp)
        settings = settings_for(state, count)
        runs = judged(settings, feed(count, seconds))
        subjects = [f"I{i:06d}" for i in range(count)]
        recorder = Recorder(state / "recorder", 1 << 34, 86400.0)
        cpu = time.process_time()
        wall = time.perf_counter()
        handed = 0.0
        for second, verdicts in enumerate(runs):
            before = time.perf_counter()
            recorder.record(settings, "ticks", START + second, verdicts, subjects, None)
            handed = max(handed, time.perf_counter() - before)
        recorder.close(timeout_s=600)
        cpu = time.process_time() - cpu
        wall = time.perf_counter() - wall
        size = sum(p.stat().st_size for p in (state / "recorder").iterdir())
    samples = count * seconds
    return {
        "bytes_per_sample": size / samples,
        "bytes_per_day": size / seconds * 6.5 * 3600,
        "cpu_share": cpu / seconds,
        "hand_over_max_ms": handed * 1000,
        "wall_s": wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.recorder")
    parser.add_argument("--seconds", type=int, default=600)
    parser.add_argument("--large-seconds", type=int, default=60)
    args = parser.parse_args()
    for count, seconds in ((1000, args.seconds), (100_000, args.large_seconds)):
        kept = "every subject" if count <= ALL_SUBJECTS_UP_TO else "not-OK subjects + worst"
        figures = measure(count, seconds)
        print(
            f"{count:>7,} instruments at 1 s ({kept}), {seconds} s recorded:"
            f" {figures['bytes_per_sample']:.3f} bytes/subject-sample"
            f" ({figures['bytes_per_day'] / 1e6:.1f} MB per 6.5 h day),"
            f" CPU {figures['cpu_share'] * 100:.2f} % of a core,"
            f" longest hand-over {figures['hand_over_max_ms']:.3f} ms",
            flush=True,
        )


if __name__ == "__main__":
    main()

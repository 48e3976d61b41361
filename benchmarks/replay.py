"""Replay speed: one trading day (6.5 h) of 1,000 instruments at 1 s, recorded from the
real tick_freshness judge over the simulated feed of benchmarks/recorder.py (a few stalls a
minute), then replayed with the recorded config and with a candidate (other thresholds).

The recording is made by the writer synchronously (no queue to drop from), with the
simulated clock, so its blocks and segments are what a day of the daemon writes.

    .venv/bin/python -m benchmarks.replay [--hours 6.5] [--instruments 1000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from benchmarks.recorder import START, feed, settings_for
from supervisor.recorder.recording import open_recording
from supervisor.recorder.replay import Replay
from supervisor.recorder.writer import Counters, Run, _Open
from supervisor.watchdogs.tick_judge import Reading, TickJudge

CHUNK_S = 600  # the feed is simulated in chunks of this many seconds


def record_day(state: Path, count: int, seconds: int) -> int:
    settings = settings_for(state, count)
    judge = TickJudge(settings.watchdogs[0])  # type: ignore[arg-type]
    subjects = [f"I{i:06d}" for i in range(count)]
    clock = [START]
    writer = _Open(state / "recorder", 1 << 34, 86400.0, Counters(), lambda: clock[0])
    for chunk in range(0, seconds, CHUNK_S):
        replies = feed(count, min(CHUNK_S, seconds - chunk), seed=chunk, start=START + chunk)
        for offset, reply in enumerate(replies):
            now = clock[0] = START + chunk + offset
            counted, not_ok = judge.judge(range(count), reply, now, None)
            verdicts = judge.verdicts(Reading(counted, not_ok, None), now)
            writer.add(Run(settings, "ticks", now, verdicts, subjects, None))
    writer.flush()
    writer.close()
    return sum(p.stat().st_size for p in (state / "recorder").iterdir())


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.replay")
    parser.add_argument("--hours", type=float, default=6.5)
    parser.add_argument("--instruments", type=int, default=1000)
    parser.add_argument(
        "--keep", type=Path, help="record into this directory, or replay what it holds"
    )
    args = parser.parse_args()
    seconds = round(args.hours * 3600)
    with tempfile.TemporaryDirectory() as tmp:
        state = args.keep or Path(tmp)
        if not (state / "recorder").exists():
            started = time.perf_counter()
            size = record_day(state, args.instruments, seconds)
            print(
                f"recorded {seconds:,} runs x {args.instruments:,} instruments:"
                f" {size / 1e6:.1f} MB, {size / seconds / args.instruments:.3f}"
                f" bytes/subject-sample (simulating and recording took"
                f" {time.perf_counter() - started:.0f} s)",
                flush=True,
            )
        candidate = settings_for(state, args.instruments).model_copy()
        looser = candidate.watchdogs[0].model_copy(update={"breach_s": 20.0, "warn_s": 8.0})
        candidate = candidate.model_copy(update={"watchdogs": [looser]})
        for label, config in (("recorded config", None), ("candidate config", candidate)):
            started, cpu = time.perf_counter(), time.process_time()
            recording = open_recording(state / "recorder")
            timeline = Replay(config).run(recording, None, None)
            took, cpu = time.perf_counter() - started, time.process_time() - cpu
            print(
                f"replay with the {label}: {timeline.runs:,} runs in {took:.1f} s"
                f" ({cpu:.1f} s of CPU; {timeline.runs / cpu:,.0f} runs per CPU second),"
                f" {len(timeline.decisions)} decisions"
                f" (target: one 6.5 h day of 1,000 instruments in <= 60 s)",
                flush=True,
            )
            for problem in recording.problems:
                print(f"  note: {problem}", flush=True)


if __name__ == "__main__":
    main()

"""A process that records runs as fast as it can, every run a block of its own, and says
each run it handed over on stdout, until it is killed (test_recorder_sigkill)."""

from __future__ import annotations

import random
import sys
from pathlib import Path

from supervisor.model import Status, Verdict, Verdicts
from supervisor.recorder.writer import Recorder
from tests.unit.test_recorder import settings_for

SUBJECTS = [f"I{i:04d}" for i in range(1000)]
START = 1_790_000_000.0


def main(directory: Path) -> None:
    clock = [START]

    def wall() -> float:  # 40 s per call: every run is a block, written at once
        clock[0] += 40
        return clock[0]

    recorder = Recorder(directory / "recorder", 1 << 30, 86400.0 * 365, wall=wall)
    settings = settings_for(directory, SUBJECTS)
    rng = random.Random(3)
    for run in range(100_000):
        ages = [rng.random() * 3 for _ in SUBJECTS]
        verdicts = Verdicts.of(
            [
                Verdict("ticks", s, Status.OK, "r", a, "s")
                for s, a in zip(SUBJECTS, ages, strict=True)
            ]
        )
        recorder.record(settings, "ticks", START + run, verdicts, SUBJECTS, None)
        print(run, flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]))

"""Run inside a private mount namespace whose DIR is a small tmpfs (test_recorder_disk_full):
record until the disk refuses, free it, record again; print what happened as JSON."""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path

from supervisor.model import Status, Verdict, Verdicts
from supervisor.recorder.recording import open_recording
from supervisor.recorder.writer import Counters, Recorder
from tests.unit.test_recorder import settings_for

SUBJECTS = [f"I{i:04d}" for i in range(200)]


def main(directory: Path) -> None:
    filler = directory / "filler"
    filler.write_bytes(b"\0" * 48 * 1024)  # most of the 64 KiB tmpfs
    counted: dict[str, float] = {"written": 0, "dropped": 0, "errors": 0}
    clock = [1_790_000_000.0]

    def wall() -> float:  # every run is a block of its own: 40 s apart
        clock[0] += 40
        return clock[0]

    counters = Counters(
        written=lambda n: counted.__setitem__("written", counted["written"] + n),
        dropped=lambda n: counted.__setitem__("dropped", counted["dropped"] + n),
        errors=lambda n: counted.__setitem__("errors", counted["errors"] + n),
    )
    recorder = Recorder(directory / "recorder", 1 << 30, 86400.0 * 365, counters, wall)
    settings = settings_for(directory, SUBJECTS)
    rng = random.Random(1)
    longest = 0.0
    for run in range(120):
        if run == 80:
            filler.unlink()  # space again: the recorder must resume
            time.sleep(0.3)
        ages = [rng.random() * 3 for _ in SUBJECTS]  # incompressible enough to fill the disk
        verdicts = Verdicts.of(
            [
                Verdict("ticks", s, Status.OK, "r", a, "s")
                for s, a in zip(SUBJECTS, ages, strict=True)
            ]
        )
        started = time.perf_counter()
        recorder.record(settings, "ticks", 1_790_000_000.0 + run, verdicts, SUBJECTS, None)
        longest = max(longest, time.perf_counter() - started)
        time.sleep(0.01)
    recorder.close(timeout_s=10)
    recording = open_recording(directory / "recorder")
    runs = [r.at for _s, r in recording.runs(with_values=True)]
    print(
        json.dumps(
            {
                **counted,
                "longest_hand_over_s": longest,
                "runs_read": len(runs),
                "last_run_read": max(runs, default=None),
                "problems": recording.problems,
            }
        )
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]))

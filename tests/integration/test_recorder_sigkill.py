"""SIGKILL in the middle of recording: what was written reads back, in order, and what the
kill cut short is at most the tail, named rather than read."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from supervisor.recorder.recording import open_recording
from testbed import REPO_ROOT

START = 1_790_000_000.0


def written(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.glob("*.rec")) if directory.exists() else 0


def test_sigkill_costs_at_most_the_unflushed_tail(tmp_path: Path) -> None:
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.recorder_child", str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
    )
    assert child.stdout is not None
    handed = 0
    try:
        for line in child.stdout:
            handed = int(line)
            if handed >= 40 and written(tmp_path / "recorder") > 10_000:
                break  # killed while recording, with something on disk to read back
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
        for line in child.stdout:  # what it handed over after the line read last
            if line.strip().isdigit():
                handed = int(line)
        child.stdout.close()
    recording = open_recording(tmp_path / "recorder")
    runs = [run.at for _s, run in recording.runs()]
    assert len(runs) >= 1
    assert runs == [START + i for i in range(len(runs))]  # in order, none invented
    assert len(runs) <= handed + 1
    assert all("torn tail" in p or "checksum" in p for p in recording.problems)

"""The flight recorder on a full disk (a 64 KiB tmpfs in a private mount namespace): the
hand-over never waits, the lost samples and the failed writes are counted, what was written
before reads back (a frame cut by ENOSPC is named, not read), and once there is space again
the recorder writes on in a new segment."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from testbed import REPO_ROOT
from tests.faults.test_disk_faults import mount_problem, private_tmpfs

pytestmark = pytest.mark.slow  # as every fault test (a subprocess in its own namespace)


def test_a_full_disk_costs_samples_never_the_caller_and_recording_resumes(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "state"
    problem = mount_problem(directory)
    if problem is not None:
        pytest.skip(f"cannot mount a private tmpfs: {problem}")
    command = [sys.executable, "-m", "tests.faults.recorder_fill", str(directory)]
    done = subprocess.run(
        [*private_tmpfs(directory), *command],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
    )
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert outcome["errors"] >= 1 and outcome["dropped"] >= 200  # whole runs lost, counted
    assert outcome["written"] > 0
    assert outcome["longest_hand_over_s"] < 0.05  # never waits for the disk
    assert outcome["runs_read"] >= 1
    # written again after the space came back (run 80 on): the last runs are there
    assert outcome["last_run_read"] >= 1_790_000_000.0 + 100
    assert outcome["runs_read"] + outcome["dropped"] / 200 == pytest.approx(120, abs=1)
    # a failed write leaves at most a torn tail, never a file that is not a recording
    assert all("torn tail" in p or "checksum" in p for p in outcome["problems"])

"""Each example profile protects its system: run it against the simulated stack, inject the
fault its runbook describes, and see the action the runbook calls for happen.

Runs `testbed/demo.py` (what `scripts/demo`, the README's first command, runs) once per
profile: private Redis and PostgreSQL, the simulator, the supervisor with the real profile
(addresses rewritten to the simulator, session calendars lifted so it fires at any hour), then
the fault.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from testbed import REPO_ROOT

pytestmark = pytest.mark.slow

# profile -> (fault its runbook describes, actuator the runbook's action maps to, state line)
CASES = {
    "spx_command_center": ("health_down", "tradier_kill", "kill switch:   ENGAGED"),
    "track7_ops": ("freeze_breaker_owner", "breaker", "breaker:       TRIPPED"),
    "nautilus_hmm": ("stall_strategy", "ops_kill", "trading state: HALTED"),
    "quantzoo": ("health_down", "safety_kill", "trading state: FLATTEN"),
    "quantum_metrics": ("raise_margin", "kill_switch", "trading state: HALTED"),
}


@pytest.mark.timeout(150)
@pytest.mark.parametrize("profile", sorted(CASES))
def test_profile_acts_on_its_runbook_fault(profile: str) -> None:
    fault, actuator, state_line = CASES[profile]
    demo = subprocess.run(
        [sys.executable, "-m", "testbed.demo", "--profile", profile, "--faults", fault],
        capture_output=True,
        text=True,
        timeout=140,
        cwd=REPO_ROOT,
        check=False,
    )
    output = demo.stdout + demo.stderr
    assert demo.returncode == 0, output
    assert f"action actuator={actuator} outcome=engaged" in output, output
    assert state_line in output, output
    assert "stopped everything the demo started" in output

"""WatchdogSec= catches a frozen daemon: SIGSTOP, no WATCHDOG=1 for 10 s, systemd kills it and
Restart=on-failure starts it again, and the restarted daemon says the state it restored."""

from __future__ import annotations

import time

import pytest

from tests.systemd.conftest import TIMEOUT_S, TRIP, UNIT_NAME, Stack

pytestmark = [pytest.mark.slow, pytest.mark.timeout(TIMEOUT_S)]

WATCHDOG_SEC = 10  # the shipped unit's WatchdogSec=
RESTART_SEC = 2  # its RestartSec=


def test_a_frozen_daemon_is_killed_by_the_watchdog_and_comes_back_latched(stack: Stack) -> None:
    stack.start_and_trip()
    frozen_pid = stack.unit("MainPID")["MainPID"]
    # At debug level systemd logs every sd_notify message it receives: what READY=1 carried.
    stack.container.run("systemd-analyze", "log-level", "debug")
    stack.container.systemctl("kill", "-s", "SIGSTOP", UNIT_NAME)
    frozen_at = time.monotonic()

    def restarted() -> bool:
        unit = stack.unit("MainPID", "ActiveState", "NRestarts")
        return unit["NRestarts"] == "1" and unit["ActiveState"] == "active"

    stack.container.wait_for(restarted, WATCHDOG_SEC + RESTART_SEC + 15, "a restart")
    back_after_s = time.monotonic() - frozen_at
    status = stack.status_text()
    unit = stack.unit("MainPID", "NRestarts", "Result", "ActiveState")
    journal = stack.journal("-o", "cat")
    ready = [line for line in journal.splitlines() if "READY=1" in line]
    print(f"back after {back_after_s:.1f}s; STATUS: {status}; {unit}")
    shown = ("atchdog", "restored", "signal", "Main process exited", "restart job")
    print("\n".join(line for line in journal.splitlines() if any(s in line for s in shown)))
    print("\n".join(ready))

    restored = TRIP.replace("REDUCE_ONLY:", "REDUCE_ONLY (restored):", 1)
    assert unit["MainPID"] not in ("0", frozen_pid)
    assert status == restored
    assert "Watchdog timeout (limit 10s)!" in journal
    assert "status=6/ABRT" in journal  # WatchdogSignal= (SIGABRT), with a SIGCONT to wake it
    assert "restored trading_state=REDUCE_ONLY" in journal
    # The restarted daemon's READY=1 came with the restored STATUS= in the same message.
    new_pid = unit["MainPID"]
    assert any(f"PID {new_pid} " in line and restored in line for line in ready), ready
    assert WATCHDOG_SEC <= back_after_s < WATCHDOG_SEC + RESTART_SEC + 15

"""What an operator reads at 03:00: `systemctl status` shows the daemon's STATUS= line and it
follows a trip; `journalctl -u trading-supervisor -p warning` shows the trip, at the
priorities the daemon gave its log lines."""

from __future__ import annotations

import json

import pytest

from tests.systemd.conftest import REDIS_UNIT, TIMEOUT_S, TRIP, UNIT_NAME, Stack

pytestmark = [pytest.mark.slow, pytest.mark.timeout(TIMEOUT_S)]

OUTAGE = "(watchdogs that need it go UNKNOWN; retrying)"  # logged as an error


def test_status_line_follows_a_trip(stack: Stack) -> None:
    active, tripped = stack.start_and_trip()
    status = stack.container.systemctl("status", UNIT_NAME, check=False)
    print(f"STATUS before: {active}\nSTATUS after: {tripped}\n{status}")
    assert tripped == TRIP
    assert f'Status: "{TRIP}"' in status
    assert "Active: active (running)" in status


def journal_entries(stack: Stack, *args: str) -> list[dict[str, str]]:
    lines = stack.journal("-o", "json", *args).splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def test_journal_shows_the_trip_at_warning_and_an_outage_at_error(stack: Stack) -> None:
    stack.start_and_trip()
    stack.container.systemctl("stop", REDIS_UNIT)  # the daemon's own Redis goes away
    stack.wait_for_status("REDUCE_ONLY", timeout_s=5)
    stack.container.wait_for(
        lambda: OUTAGE in stack.journal("-p", "err", "-o", "cat"), 10, "the Redis outage"
    )

    warnings = stack.journal("-p", "warning")
    print(warnings)
    entries = journal_entries(stack)
    by_message = {
        e["MESSAGE"]: e["PRIORITY"]
        for e in entries
        if e.get("SYSLOG_IDENTIFIER") == "trading-supervisor"
    }
    for message, priority in by_message.items():
        print(f"<{priority}> {message}")
    assert "trading_state=REDUCE_ONLY (was ACTIVE)" in warnings
    assert "action actuator=breaker outcome=engaged" in warnings
    assert "started version=" not in warnings  # INFO: below -p warning

    def priority_of(needle: str) -> str:
        return next(p for m, p in by_message.items() if needle in m)

    assert priority_of("trading_state=REDUCE_ONLY (was ACTIVE)") == "4"
    assert priority_of(" opened: ") == "4"  # the incident line (the audit line is INFO)
    assert priority_of(OUTAGE) == "3"
    assert priority_of("started version=") == "6"
    assert not [m for m in by_message if m.startswith("<")]  # journald took every prefix

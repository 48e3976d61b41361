"""What `check`, `status` and `events` print, and the audit journal line: whatever text from
outside they hold, each row is one line, with no escape sequence and a bounded width."""

from __future__ import annotations

import time

from hypothesis import given
from hypothesis import strategies as st

from supervisor.cli_tables import render_status, render_verdicts
from supervisor.model import Status, Verdict
from supervisor.publish.audit import AuditEvent, AuditKind, AuditOutcome
from supervisor.publish.audit.event import describe
from supervisor.publish.audit.read import SourcedEvent, format_event
from supervisor.text import CELL_MAX_CHARS, STATUS_LINE_MAX_CHARS, is_unsafe

EVIL = "x\nWATCHDOG=trigger\r\x1b]0;evil\x07 \x1b[2J\u202eSPX\u2028\x85\x9b31m"
outside = st.text(
    alphabet=st.one_of(st.characters(exclude_categories=()), st.sampled_from(EVIL)),
    max_size=300,
)


def assert_safe(text: str, lines: int) -> None:
    assert len(text.split("\n")) == lines, text
    assert not any(is_unsafe(c) for c in text.replace("\n", ""))


def published(reason: str, value: str) -> dict[str, object]:
    state = {
        "trading_state": value,
        "health": value,
        "breaker": value,
        "kill_switch": value,
        "reason": reason,
        "since": value,
        "instance": value,
        "leader": value,
        "version": value,
        "clock_offset": value,
        "clock_offset_uncertainty": value,
    }
    watchdog = {"status": value, "value": value, "last_run": value, "streak": value}
    return {
        "alive": True,
        "heartbeat_at": time.time(),
        "state": state,
        "watchdogs": {"w1": {**watchdog, "reason": reason}, "w2": watchdog},
    }


@given(reason=outside, value=outside)
def test_status_is_always_the_same_lines(reason: str, value: str) -> None:
    shown = render_status(published(reason, value))
    assert_safe(shown, lines=8 + 1 + 1 + 2)  # eight fields, a blank, a header, two watchdogs
    reason_line = shown.split("\n")[5]
    assert len(reason_line) <= len("reason:        ") + STATUS_LINE_MAX_CHARS


def test_status_caps_a_ten_kilobyte_reason_in_the_table() -> None:
    shown = render_status(published("r" * 10_000, "v"))
    row = shown.split("\n")[-2]
    assert row.endswith("r…") and len(row) < 6 * (CELL_MAX_CHARS + 2)


def test_status_error_is_one_line() -> None:
    assert_safe(render_status({"alive": False, "error": f"redis: {EVIL}"}), lines=1)


@given(subject=outside, reason=outside)
def test_check_table_is_one_line_per_verdict(subject: str, reason: str) -> None:
    verdicts = [
        Verdict("prom", subject, Status.UNKNOWN, reason),
        Verdict("prom", "ok", Status.OK, "fine", 1.0, "s", 2.0),
    ]
    assert_safe(render_verdicts(verdicts), lines=3)


@given(reason=outside, actor=outside, detail=outside)
def test_an_audit_event_is_one_line(reason: str, actor: str, detail: str) -> None:
    event = AuditEvent.new(
        AuditKind.MANUAL,
        actor=actor,
        reason=reason,
        outcome=AuditOutcome.ENGAGE_BREAKER,
        detail={"result": [detail]},
    )
    assert_safe(describe(event), lines=1)
    assert_safe(format_event(SourcedEvent(event, "stream")), lines=1)


def test_an_audit_event_read_back_with_unknown_kind_and_outcome_is_one_line() -> None:
    event = AuditEvent.from_dict(
        {"id": "00000000-0000-4000-8000-000000000001", "at": 1, "kind": EVIL, "outcome": EVIL}
    )
    shown = describe(event)
    assert_safe(shown, lines=1)
    assert shown.startswith("x\\x0aWATCHDOG=trigger")


@given(offset=st.one_of(outside, st.floats().map(str)), uncertainty=st.floats().map(str))
def test_status_shows_a_clock_offset_read_back_only_when_it_is_one(
    offset: str, uncertainty: str
) -> None:
    state = {"clock_offset": offset, "clock_offset_uncertainty": uncertainty}
    shown = render_status({"alive": True, "heartbeat_at": time.time(), "state": state})
    line = next(line for line in shown.split("\n") if line.startswith("clock offset:"))
    assert len(line) < 100 and not any(is_unsafe(c) for c in line)


def test_status_says_which_side_the_clock_offset_is() -> None:
    state = {"clock_offset": "-0.0125", "clock_offset_uncertainty": "0.0003"}
    shown = render_status({"alive": True, "heartbeat_at": time.time(), "state": state})
    assert "clock offset:  Redis TIME 12.5 ms behind the daemon's clock (±0.3 ms)" in shown
    shown = render_status({"alive": True, "heartbeat_at": time.time(), "state": {}})
    assert "clock offset:  not measured (no Redis TIME reading)" in shown

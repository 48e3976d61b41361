"""The audit outbox file and the event format, without servers: append, read, drop, tear."""

from __future__ import annotations

import json
import logging
import os
import stat
import tempfile
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from supervisor.constants import AUDIT_OUTBOX_FILE
from supervisor.model import Decision, Status
from supervisor.publish.audit import (
    AuditEvent,
    AuditKind,
    AuditOutcome,
    AuditTrail,
    action_event,
    decision_event,
    describe,
    event_from_stream,
    stream_fields,
)
from supervisor.publish.audit.read import parse_since
from supervisor.publish.outbox import Outbox


def outbox_in(directory: Path) -> Outbox:
    return Outbox(directory / "state" / AUDIT_OUTBOX_FILE)


def event(n: int = 0, **fields: Any) -> AuditEvent:
    return AuditEvent.new(AuditKind.ACTION, at=1_700_000_000.0 + n, actuator="breaker", **fields)


def test_append_creates_a_private_dir_and_file(tmp_path: Path) -> None:
    outbox = outbox_in(tmp_path)
    assert outbox.is_empty() and outbox.size() == 0
    outbox.append(b'{"a":1}')
    assert stat.S_IMODE(outbox.path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(outbox.path.stat().st_mode) == 0o600
    assert outbox.path.read_bytes() == b'{"a":1}\n'
    assert not outbox.is_empty() and outbox.size() == 1


def test_read_head_and_drop_keep_order_and_the_rest(tmp_path: Path) -> None:
    outbox = outbox_in(tmp_path)
    for n in range(5):
        outbox.append(f"line{n}".encode())
    head = outbox.read_head(3)
    assert head.lines == [b"line0", b"line1", b"line2"]
    outbox.append(b"line5")  # appended while the head is being replayed
    assert outbox.drop_head(head, 2) == 4
    assert outbox.read_all() == [b"line2", b"line3", b"line4", b"line5"]
    assert outbox.drop_head(outbox.read_head(100)) == 0
    assert outbox.is_empty() and not outbox.path.exists()


def test_drop_head_of_a_file_replaced_meanwhile_drops_nothing(tmp_path: Path) -> None:
    outbox = outbox_in(tmp_path)
    outbox.append(b"one")
    head = outbox.read_head(10)
    replacement = outbox.path.with_name("other")
    replacement.write_bytes(b"two\n")
    os.replace(replacement, outbox.path)
    assert outbox.drop_head(head) == 1
    assert outbox.read_all() == [b"two"]


def test_a_torn_last_line_never_swallows_the_next_event(tmp_path: Path) -> None:
    outbox = outbox_in(tmp_path)
    outbox.append(b'{"whole":1}')
    with outbox.path.open("ab") as file:
        file.write(b'{"torn": "hal')  # a crash mid-write
    assert outbox.size() == 2
    outbox.append(b'{"next":2}')
    assert outbox.read_head(10).lines == [b'{"whole":1}', b'{"torn": "hal', b'{"next":2}']
    assert outbox.size() == 3


def test_size_is_recounted_when_another_process_changes_the_file(tmp_path: Path) -> None:
    outbox = outbox_in(tmp_path)
    outbox.append(b"a")
    assert outbox.size() == 1
    with outbox.path.open("ab") as file:
        file.write(b"b\nc\n\n")
    assert outbox.size() == 3


def test_lines_with_newlines_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        outbox_in(tmp_path).append(b"a\nb")


def test_event_round_trips_through_json_and_the_stream() -> None:
    original = event(1, reason="SPX age 17.2s > 15s", response_code=200, detail={"k": [1, "x"]})
    assert AuditEvent.from_json(original.to_json()) == original
    fields = {k.encode(): v.encode() for k, v in stream_fields(original).items()}
    assert event_from_stream(fields) == original


# Fixed ids (valid UUIDs), not uuid4() at collection: every pytest-xdist worker must collect
# the same test ids.
@pytest.mark.parametrize(
    "line",
    [
        b'{"id": "8c1f',  # torn
        b"[1, 2]",
        b'{"id": "not-a-uuid", "at": 1, "kind": "action"}',
        b'{"at": 1, "kind": "action"}',
        b'{"id": "5f0c8e2a-3b1d-4e7f-9a6c-2d4b8e1f0a37", "at": "nan", "kind": "action"}',
        b'{"id": "a93e1c64-7d25-4b08-8f1e-6c3a9d2b5e70", "at": 1, "kind": ""}',
        b'{"id": "0d7b4f18-92ce-4a53-b6e1-7f2c5a8d3b94", "at": 1, "kind": "a", "detail": 3}',
        b"\xff\xfe",
    ],
)
def test_lines_that_are_not_events_are_refused(line: bytes) -> None:
    with pytest.raises(ValueError):
        AuditEvent.from_json(line)


def test_decision_and_action_events() -> None:
    decision = Decision("spx_ticks", Status.BREACH, ("breaker",), "SPX age 17s", "inc-1", 5.0)
    made = decision_event(decision)
    assert (made.kind, made.at, made.incident_id, made.outcome) == (
        "decision",
        5.0,
        "inc-1",
        "breach",
    )
    action = action_event(
        decision, "breaker", AuditOutcome.FAILED, duration_ms=3.5, response_code=503
    )
    assert action.is_warning and not made.is_warning
    assert "actuator=breaker" in describe(action) and "code=503" in describe(action)
    assert uuid.UUID(action.id).version == 4


def test_parse_since() -> None:
    assert parse_since("1h", now=10_000.0) == 6_400.0
    assert parse_since("2026-11-22T09:30:00Z", now=0) == 1_795_339_800.0
    with pytest.raises(ValueError, match="invalid time"):
        parse_since("yesterday", now=0)


@pytest.mark.parametrize("text", ["99999999999999999999h", "1969-12-31T00:00:00Z", "2h"])
def test_since_before_1970_is_refused(text: str) -> None:
    # Before: accepted; with PostgreSQL the reader's datetime.fromtimestamp overflowed.
    with pytest.raises(ValueError, match="before 1970"):
        parse_since(text, now=3600.0)


@pytest.mark.anyio
async def test_without_postgres_events_go_to_the_outbox(tmp_path: Path) -> None:
    sizes: list[float] = []
    trail = AuditTrail(tmp_path / "state", None, None, "ns", "sup-a", sizes.append)
    for n in range(3):
        await trail.record(event(n))
    assert trail.outbox_size() == 3 and sizes[-1] == 3.0
    assert await trail.replay() == 0
    lines = trail.outbox.read_all()
    assert [AuditEvent.from_json(x).at for x in lines] == [1.7e9, 1.7e9 + 1, 1.7e9 + 2]
    assert json.loads(lines[0])["instance"] == "sup-a"


@pytest.mark.anyio
async def test_record_never_raises(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    trail = AuditTrail(blocker, None, None, "ns", "sup-a")
    with caplog.at_level(logging.INFO, logger="supervisor.audit"):
        await trail.record(event(reason="x"))
    messages = [r.getMessage() for r in caplog.records]
    assert any("only in the journal" in m for m in messages)
    assert any('reason="x"' in m for m in messages)


@pytest.mark.anyio
async def test_journal_levels(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    trail = AuditTrail(tmp_path, None, None, "ns", "sup-a")
    with caplog.at_level(logging.INFO, logger="supervisor.audit"):
        await trail.record(event(outcome=AuditOutcome.OK))
        await trail.record(event(outcome=AuditOutcome.FAILED))
        await trail.record(AuditEvent.new(AuditKind.MANUAL, actor="alice", reason="reset"))
    audit = [r for r in caplog.records if r.name == "supervisor.audit"]
    assert [r.levelno for r in audit] == [logging.INFO, logging.WARNING, logging.WARNING]
    assert "actor=alice" in audit[2].getMessage()


# --- property: whatever the events and however the replay is cut, order and content survive --

texts = st.none() | st.text(max_size=30)
events = st.builds(
    AuditEvent.new,
    kind=st.sampled_from(AuditKind),
    at=st.floats(min_value=0, max_value=4e9),
    reason=texts,
    outcome=st.none() | st.sampled_from(AuditOutcome) | st.text(max_size=30),
    watchdog=texts,
    response_code=st.none() | st.integers(100, 599),
    duration_ms=st.none() | st.floats(0, 1e6),
    detail=st.dictionaries(st.text(max_size=5), st.text(max_size=10) | st.integers(), max_size=3),
)


@settings(max_examples=60, deadline=None)
@given(
    batches=st.lists(st.lists(events, max_size=6), min_size=1, max_size=6),
    cuts=st.lists(st.tuples(st.integers(1, 8), st.integers(0, 8)), max_size=8),
    torn=st.booleans(),
)
def test_any_events_survive_append_and_replay_in_order(
    batches: list[list[AuditEvent]], cuts: list[tuple[int, int]], torn: bool
) -> None:
    with tempfile.TemporaryDirectory() as directory:
        outbox = outbox_in(Path(directory))
        outbox.path.parent.mkdir()
        appended: list[AuditEvent] = []
        replayed: list[bytes] = []
        for n, batch in enumerate(batches):
            for item in batch:
                outbox.append(item.to_json())
                appended.append(item)
            if torn and n == 0:
                with outbox.path.open("ab") as file:
                    file.write(b'{"id": "torn')
            max_lines, take = cuts[n] if n < len(cuts) else (8, 8)
            head = outbox.read_head(max_lines)
            take = min(take, len(head.lines))
            replayed += head.lines[:take]
            outbox.drop_head(head, take)
        replayed += outbox.read_all()
        survivors = [AuditEvent.from_json(x) for x in replayed if not x.startswith(b'{"id": "torn')]
        assert survivors == appended
        assert len(replayed) == len(appended) + (1 if torn else 0)

"""Audit kinds and outcomes: members go out as the same strings as ever and come back as
members from every store; strings this version does not know come back as plain strings."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from supervisor.manual import ENGAGE_OUTCOMES, RESET_OUTCOMES
from supervisor.model import Decision, Status
from supervisor.policy import SEVERITIES
from supervisor.publish.audit import (
    AuditEvent,
    AuditKind,
    AuditOutcome,
    decision_event,
    describe,
    event_from_stream,
    stream_fields,
)
from supervisor.publish.audit.event import TEXT_FIELDS
from supervisor.publish.audit.kinds import FAILED_OUTCOMES, SEVERITY_OUTCOMES
from supervisor.publish.audit.postgres import from_row, to_row
from supervisor.publish.audit.read import SourcedEvent, event_json, format_event

COLUMNS = ("id", "at", "kind", *TEXT_FIELDS, "duration_ms", "response_code", "detail")


def through_json(event: AuditEvent) -> AuditEvent:
    return AuditEvent.from_json(event.to_json())


def through_stream(event: AuditEvent) -> AuditEvent:
    return event_from_stream({k.encode(): v.encode() for k, v in stream_fields(event).items()})


def through_row(event: AuditEvent) -> AuditEvent:
    """As asyncpg hands a row back: uuid, datetime, text, jsonb as a str."""
    return from_row(dict(zip(COLUMNS, to_row(event), strict=True)))


Store = Callable[[AuditEvent], AuditEvent]
STORES: list[Store] = [through_json, through_stream, through_row]


@pytest.mark.parametrize("store", STORES)
@pytest.mark.parametrize("kind", list(AuditKind))
def test_every_kind_comes_back_as_its_member(store: Store, kind: AuditKind) -> None:
    back = store(AuditEvent.new(kind, at=1_700_000_000.0))
    assert back.kind is kind


@pytest.mark.parametrize("store", STORES)
@pytest.mark.parametrize("outcome", list(AuditOutcome))
def test_every_outcome_comes_back_as_its_member(store: Store, outcome: AuditOutcome) -> None:
    back = store(AuditEvent.new(AuditKind.ACTION, at=1_700_000_000.0, outcome=outcome))
    assert back.outcome is outcome


def test_members_are_stored_as_their_plain_strings() -> None:
    event = AuditEvent.new(AuditKind.ACTION, at=1_700_000_000.0, outcome=AuditOutcome.DRY_RUN)
    line = json.loads(event.to_json())
    assert (line["kind"], line["outcome"]) == ("action", "dry_run")
    fields = stream_fields(event)
    assert (fields["kind"], fields["outcome"]) == ("action", "dry_run")
    row = dict(zip(COLUMNS, to_row(event), strict=True))
    assert (type(row["kind"]), type(row["outcome"])) == (str, str)  # not the enum, for asyncpg
    assert (row["kind"], row["outcome"]) == ("action", "dry_run")
    assert describe(event).startswith("action outcome=dry_run ")


def unknown_line() -> bytes:
    return json.dumps(
        {"id": str(uuid.uuid4()), "at": 1_700_000_000, "kind": "heartbeat", "outcome": "skipped"}
    ).encode()


def unknown_row() -> dict[str, Any]:
    at = datetime.fromtimestamp(1_700_000_000, UTC)
    known = {
        "id": uuid.uuid4(),
        "at": at,
        "kind": "heartbeat",
        "outcome": "skipped",
        "detail": "{}",
    }
    return dict.fromkeys(COLUMNS) | known


@pytest.mark.parametrize(
    "read",
    [
        lambda: AuditEvent.from_json(unknown_line()),
        lambda: event_from_stream(
            {k.encode(): str(v).encode() for k, v in json.loads(unknown_line()).items()}
        ),
        lambda: from_row(unknown_row()),
    ],
    ids=["outbox", "stream", "postgres"],
)
def test_unknown_kinds_and_outcomes_from_storage_stay_strings(
    read: Callable[[], AuditEvent],
) -> None:
    event = read()
    assert (event.kind, event.outcome) == ("heartbeat", "skipped")
    assert not isinstance(event.kind, AuditKind) and not isinstance(event.outcome, AuditOutcome)
    assert not event.is_warning
    assert "heartbeat outcome=skipped" in describe(event)
    item = SourcedEvent(event, "postgres")
    assert "heartbeat" in format_event(item) and json.loads(event_json(item))["kind"] == "heartbeat"
    assert through_json(event) == event and through_stream(event) == event


def test_failed_outcomes_are_warnings() -> None:
    assert {AuditOutcome.FAILED, AuditOutcome.REFUSED, AuditOutcome.LOST} == FAILED_OUTCOMES
    for outcome in AuditOutcome:
        event = AuditEvent.new(AuditKind.CONFIG, outcome=outcome)
        assert event.is_warning is (outcome in FAILED_OUTCOMES)
    assert AuditEvent.new(AuditKind.MANUAL, outcome=AuditOutcome.RESET_KILL).is_warning


@pytest.mark.parametrize("severity", SEVERITIES)
def test_a_decision_at_each_severity_says_that_severity(severity: Status) -> None:
    decision = Decision("spx_ticks", severity, ("breaker",), "stale", "inc-1", 5.0)
    assert decision_event(decision).outcome == severity.name.lower()
    assert set(SEVERITY_OUTCOMES) == set(SEVERITIES)


def test_manual_outcomes_are_the_commands_as_they_were_always_stored() -> None:
    for group in ("breaker", "kill"):
        assert ENGAGE_OUTCOMES[group] == f"engage {group}"
        assert RESET_OUTCOMES[group, False] == f"reset {group}"
        assert RESET_OUTCOMES[group, True] == f"reset {group} (forced during a breach)"

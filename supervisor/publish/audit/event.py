"""The audit event: what it holds, how it is built, checked, shown and carried.

One `AuditEvent` is stored the same in every place: an outbox line (`to_json`/`from_json`), a
`{ns}:events` stream entry (`stream_fields`/`event_from_stream`) and a Postgres row
(supervisor/publish/audit/postgres.py). Whatever is read back goes through `from_dict`, which
raises ValueError for anything that is not a whole, valid event.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from supervisor import stored
from supervisor.model import Decision, Origin
from supervisor.publish.audit.kinds import (
    FAILED_OUTCOMES,
    SEVERITY_OUTCOMES,
    AuditKind,
    AuditOutcome,
    as_kind,
    as_outcome,
)
from supervisor.text import CELL_MAX_CHARS, safe_line

# The journal line and `events` show outside text (an operator's reason, a venue's reply in
# `detail`, anything read back from Postgres): each part one safe line, this long at most.
REASON_SHOWN_MAX_CHARS = 400
DETAIL_SHOWN_MAX_CHARS = 600
TEXT_FIELDS = ("actor", "instance", "watchdog", "actuator", "incident_id", "reason", "outcome")
_MAX_EPOCH_S = 1e11  # year 5138: anything later is a unit mistake


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One decision, action, manual command, state change... as stored everywhere."""

    id: str
    at: float  # epoch seconds
    kind: AuditKind | str  # a plain str only when read back and unknown to this version
    actor: str | None = None  # instance id or operator
    instance: str | None = None
    watchdog: str | None = None
    actuator: str | None = None
    incident_id: str | None = None
    reason: str | None = None
    outcome: AuditOutcome | str | None = None  # likewise (kinds.py)
    duration_ms: float | None = None
    response_code: int | None = None
    # The HA lease's fencing token of the instance that recorded it; None with [ha] off, or
    # while it did not lead. Orders every leader's events: a higher token is a later term.
    fencing_token: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def new(
        cls,
        kind: AuditKind,
        *,
        at: float | None = None,
        outcome: AuditOutcome | None = None,
        **fields: Any,
    ) -> AuditEvent:
        """A new event with a fresh uuid4 and the current time (unless `at` is given)."""
        at = time.time() if at is None else at
        return cls(id=str(uuid.uuid4()), at=at, kind=kind, outcome=outcome, **fields)

    @property
    def is_warning(self) -> bool:
        return self.kind == AuditKind.MANUAL or (self.outcome or "").lower() in FAILED_OUTCOMES

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), separators=(",", ":"), default=str).encode("utf-8")

    @classmethod
    def from_json(cls, raw: bytes | str) -> AuditEvent:
        """Parse and validate one outbox line; ValueError if it is not a whole, valid event
        (stored.Unreadable for JSON too deep or too large)."""
        return cls.from_dict(stored.decode_json(raw))

    @classmethod
    def from_dict(cls, data: object) -> AuditEvent:
        if not isinstance(data, dict):
            raise ValueError("an audit event must be a JSON object")
        try:
            texts = {name: _optional_str(data.get(name), name) for name in TEXT_FIELDS}
            texts["outcome"] = as_outcome(texts["outcome"])
            return cls(
                id=str(uuid.UUID(str(data["id"]))),
                at=_epoch(data["at"]),
                kind=as_kind(_kind(data["kind"])),
                **texts,
                duration_ms=_optional_float(data.get("duration_ms")),
                response_code=_optional_int(data.get("response_code")),
                fencing_token=_optional_int(data.get("fencing_token"), "fencing_token"),
                detail=_detail(data.get("detail")),
            )
        except KeyError as exc:
            raise ValueError(f"an audit event needs {exc}") from None
        except (TypeError, OverflowError) as exc:
            raise ValueError(str(exc)) from None


def decision_event(decision: Decision, **fields: Any) -> AuditEvent:
    """The audit event of a policy decision (at WARN, BREACH or CRITICAL: policy.SEVERITIES)."""
    return AuditEvent.new(
        AuditKind.DECISION,
        at=decision.at,
        watchdog=decision.watchdog,
        incident_id=decision.incident_id,
        reason=decision.reason,
        outcome=SEVERITY_OUTCOMES[decision.severity],
        detail={"actuators": list(decision.actuators)},
        **fields,
    )


def action_event(
    decision: Decision, actuator: str, outcome: AuditOutcome, **fields: Any
) -> AuditEvent:
    """The audit event of one actuator's action on a decision (`duration_ms`, `response_code`,
    `detail` as keywords)."""
    by_watchdog = decision.origin is Origin.WATCHDOG
    return AuditEvent.new(
        AuditKind.ACTION,
        watchdog=decision.watchdog if by_watchdog else None,
        actor=None if by_watchdog else decision.origin.value,  # "manual", "latch"
        actuator=actuator,
        incident_id=decision.incident_id,
        reason=decision.reason,
        outcome=outcome,
        **fields,
    )


# --- validation of what is read back --------------------------------------------------------


def _epoch(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"invalid event time {value!r}")
    seconds = float(value)
    if not (math.isfinite(seconds) and 0 <= seconds < _MAX_EPOCH_S):
        raise ValueError(f"invalid event time {value!r}")
    return seconds


def _kind(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("an audit event needs a non-empty 'kind'")
    return value


def _optional_str(value: object, name: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ValueError(f"'{name}' must be a string")
    return value


def _optional_float(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"invalid duration_ms {value!r}")
    return float(value)


def _optional_int(value: object, name: str = "response_code") -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"invalid {name} {value!r}")
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"invalid {name} {str(value)[:40]!r}") from None


def _detail(value: object) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError("'detail' must be a JSON object")
    return value


# --- the journal line, stream entries, outbox lines -----------------------------------------


def describe(event: AuditEvent) -> str:
    """The one-line journal form: `decision watchdog=spx_ticks incident=... reason="..."`, every
    part made safe (supervisor/text.py): whatever an event holds, it is one line."""
    parts = [safe_line(event.kind, CELL_MAX_CHARS)]
    labels = (
        ("actor", event.actor),
        ("watchdog", event.watchdog),
        ("actuator", event.actuator),
        ("incident", event.incident_id),
        ("outcome", event.outcome),
        ("code", event.response_code),
        ("fencing", event.fencing_token),
        ("duration_ms", None if event.duration_ms is None else f"{event.duration_ms:.1f}"),
    )
    parts += [
        f"{label}={safe_line(str(value), CELL_MAX_CHARS)}"
        for label, value in labels
        if value is not None
    ]
    if event.reason is not None:
        reason = json.dumps(event.reason, ensure_ascii=False)
        parts.append(f"reason={safe_line(reason, REASON_SHOWN_MAX_CHARS)}")
    if event.detail:
        detail = json.dumps(event.detail, ensure_ascii=False, default=str)
        parts.append(f"detail={safe_line(detail, DETAIL_SHOWN_MAX_CHARS)}")
    parts.append(f"id={event.id}")
    return " ".join(parts)


def stream_fields(event: AuditEvent) -> dict[str, str]:
    """Flat `{ns}:events` entry fields: None fields left out, `detail` as JSON."""
    fields = {
        name: str(value)
        for name, value in event.to_dict().items()
        if value is not None and name != "detail"
    }
    if event.detail:
        fields["detail"] = json.dumps(event.detail, separators=(",", ":"), default=str)
    return fields


def event_from_stream(fields: Mapping[Any, Any]) -> AuditEvent:
    """An event back from a stream entry's fields (bytes or str); ValueError if invalid."""
    data: dict[str, Any] = {_text(k): _text(v) for k, v in fields.items()}
    if "detail" in data:
        data["detail"] = stored.decode_json(data["detail"])
    return AuditEvent.from_dict(data)


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def parse_lines(lines: list[bytes]) -> tuple[list[tuple[AuditEvent, bytes]], list[bytes]]:
    """Outbox lines as (event, line) pairs, and the lines that are not events (torn writes)."""
    events: list[tuple[AuditEvent, bytes]] = []
    rejected: list[bytes] = []
    for line in lines:
        try:
            events.append((AuditEvent.from_json(line), line))
        except ValueError:
            rejected.append(line)
    return events, rejected

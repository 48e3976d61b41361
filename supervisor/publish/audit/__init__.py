"""The audit trail: each decision and action, to Postgres, the `{ns}:events` stream, the journal.

`AuditTrail.record(event)` never raises. It logs one journal line (logger "supervisor.audit"),
XADDs the event to `{ns}:events` (capped, best effort: a Redis failure is logged once), and
stores it durably: in the `supervisor_events` table (constants.AUDIT_TABLE), or, when Postgres
is not configured, away, or the outbox still holds older events (order), as one fsync'd line of
the outbox file in `state_dir` (supervisor/publish/outbox.py). `replay()`, called every
housekeeping cycle, moves the outbox into Postgres in order, in batches of
`INSERT ... ON CONFLICT (id) DO NOTHING`, then removes exactly the lines it inserted. Every
event carries a UUID primary key, so an event inserted twice (a crash between INSERT and the
outbox rewrite, a timeout after a commit, two trails replaying copies of one outbox) is stored
once. How long Postgres was away does not matter to the mechanism: only the outbox's contents
do.

- kinds.py: `AuditKind` and `AuditOutcome`, what an event's `kind` and `outcome` say
- event.py: `AuditEvent`, its builders, checks, journal line, stream fields and outbox lines
- postgres.py: the table, its SQL, events as rows, the writer (one connection, a backoff)
- trail.py: `AuditTrail`: record, store, replay
- read.py: `TrailReader` and `show_events`, the `trading-supervisor events` command's side
"""

from supervisor.publish.audit.event import (
    AuditEvent,
    action_event,
    decision_event,
    describe,
    event_from_stream,
    stream_fields,
)
from supervisor.publish.audit.kinds import AuditKind, AuditOutcome
from supervisor.publish.audit.trail import AuditTrail

__all__ = [
    "AuditEvent",
    "AuditKind",
    "AuditOutcome",
    "AuditTrail",
    "action_event",
    "decision_event",
    "describe",
    "event_from_stream",
    "stream_fields",
]

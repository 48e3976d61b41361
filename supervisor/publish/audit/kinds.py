"""What an audit event's `kind` and `outcome` say: StrEnums, so that what is stored and
streamed is the member's value, the same strings as before they were enums.

Events are built with members. Events read back (outbox lines, stream entries, rows) get the
member when the string is known, and keep the plain string when it is not: an event written
by another version of the supervisor must still show in `trading-supervisor events`.
"""

from __future__ import annotations

import enum

from supervisor.model import Status


class AuditKind(enum.StrEnum):
    """What happened. Each is emitted from one place (the comment says where)."""

    DECISION = "decision"  # the policy ordered actuators (daemon._cycle: decision_event)
    ACTION = "action"  # one actuator acted on a decision (daemon._act: action_event)
    MANUAL = "manual"  # trip, kill or reset from the CLI (manual._record)
    STATE = "state"  # engagements restored at start (daemon._restore), an auto_reset release
    CONFIG = "config"  # a SIGHUP reload applied or refused (daemon.reload)
    LEADERSHIP = "leadership"  # this instance took or lost the HA lease (daemon.lease_keeper)


class AuditOutcome(enum.StrEnum):
    """How it ended, by kind."""

    # decision: the severity that fired (decision_event)
    WARN = "warn"
    BREACH = "breach"
    CRITICAL = "critical"
    # action (daemon._act); OK is also a config reload applied
    OK = "ok"  # engaged now
    UNCHANGED = "unchanged"  # it was engaged already
    FAILED = "failed"  # it raised, or did not finish within its max_duration_s
    DRY_RUN = "dry_run"  # [supervisor] dry_run: only said what it would engage
    # state
    RESTORED = "restored"  # engagements restored from state_dir and Redis (daemon._restore)
    RELEASED = "released"  # auto_reset_after released a breaker (daemon._auto_reset)
    # config
    REFUSED = "refused"  # a reload refused: the running config stays (daemon.reload)
    # leadership
    ACQUIRED = "acquired"  # took the lease: acts from now on (its fencing token in the event)
    LOST = "lost"  # another instance holds the lease, or it lapsed: acts no more
    # manual: the command that was run (manual events have always stored it here)
    ENGAGE_BREAKER = "engage breaker"
    ENGAGE_KILL = "engage kill"
    RESET_BREAKER = "reset breaker"
    RESET_KILL = "reset kill"
    RESET_BREAKER_FORCED = "reset breaker (forced during a breach)"
    RESET_KILL_FORCED = "reset kill (forced during a breach)"


# Outcomes logged at WARNING (with every "manual" event); anything else at INFO.
FAILED_OUTCOMES = frozenset({AuditOutcome.FAILED, AuditOutcome.REFUSED, AuditOutcome.LOST})

# The outcome of a decision is the severity that fired: policy.SEVERITIES.
SEVERITY_OUTCOMES = {
    Status.WARN: AuditOutcome.WARN,
    Status.BREACH: AuditOutcome.BREACH,
    Status.CRITICAL: AuditOutcome.CRITICAL,
}


def as_kind(value: str) -> AuditKind | str:
    """The member for a kind read back; a kind this version does not know stays a string."""
    try:
        return AuditKind(value)
    except ValueError:
        return value


def as_outcome(value: str | None) -> AuditOutcome | str | None:
    """The member for an outcome read back; one this version does not know stays a string."""
    if value is None:
        return None
    try:
        return AuditOutcome(value)
    except ValueError:
        return value

"""Repairs a watchdog proposes (lock_ttl: release an orphaned lock), applied by the daemon in
the background, never in dry_run, each logged and written to the audit trail."""

from __future__ import annotations

import logging

import anyio

from supervisor import remedies
from supervisor.daemon.auditing import Auditing
from supervisor.daemon.context import Context
from supervisor.model import Remedy
from supervisor.publish.audit import AuditEvent, AuditKind, AuditOutcome

log = logging.getLogger("supervisor")

REMEDY_OUTCOMES = {"released": AuditOutcome.RELEASED, "failed": AuditOutcome.FAILED}


class Repairs:
    def __init__(self, context: Context, auditing: Auditing) -> None:
        self.context = context
        self.auditing = auditing

    def start(self, remedy: Remedy) -> None:
        """Apply a watchdog's proposed repair in the background (never in dry_run), audited.
        Only the leader repairs (with [ha] on): it is no move toward safety."""
        if self.context.leads():
            self.context.tasks.spawn(self._apply(remedy))

    async def _apply(self, remedy: Remedy) -> None:
        context = self.context
        what = remedies.describe(remedy)
        if context.assembly.settings.supervisor.dry_run:
            log.warning("dry_run: would %s for watchdog=%s", what, remedy.watchdog)
            outcome, result = "dry_run", AuditOutcome.DRY_RUN
        else:
            with anyio.move_on_after(context.assembly.redis_timeout_s * 2) as scope:
                outcome = await remedies.apply(context.assembly.clients.redis, remedy)
            outcome = "failed: timed out" if scope.cancelled_caught else outcome
            result = REMEDY_OUTCOMES.get(outcome.partition(":")[0], AuditOutcome.UNCHANGED)
            log.warning("audit: watchdog=%s %s outcome=%s", remedy.watchdog, what, outcome)
        self.auditing.record(
            AuditEvent.new(
                AuditKind.ACTION,
                watchdog=remedy.watchdog,
                actuator=remedy.action,
                reason=what,
                outcome=result,
                detail={"outcome": outcome},
            )
        )

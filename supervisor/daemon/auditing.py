"""The daemon's audit records: written in the background, in order, never raising."""

from __future__ import annotations

from dataclasses import replace

from supervisor.daemon.context import Context
from supervisor.publish.audit import AuditEvent


class Auditing:
    def __init__(self, context: Context) -> None:
        self.context = context

    def record(self, event: AuditEvent) -> None:
        """Record without blocking the caller; the trail keeps the order and never raises.
        The event carries this instance's fencing token while it leads."""
        token = self.context.leadership.token
        if event.fencing_token is None and token is not None:
            event = replace(event, fencing_token=token)
        self.context.tasks.spawn(self.context.assembly.audit.record(event))

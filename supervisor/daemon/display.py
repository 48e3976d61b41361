"""The global answer, derived again and shown: metrics, the STATUS line (which instance acts
in front of it), and a journal line when the trading state changes."""

from __future__ import annotations

import logging
from dataclasses import replace

from supervisor.daemon.context import Context
from supervisor.global_state import GlobalState
from supervisor.ha.leadership import Role
from supervisor.text import safe_line

log = logging.getLogger("supervisor")


class Display:
    def __init__(self, context: Context) -> None:
        self.context = context
        settings = context.assembly.settings
        context.metrics.ha_enabled.set(1 if settings.ha.enabled else 0)
        context.metrics.audit_postgres_enabled.set(0 if settings.postgres.dsn is None else 1)
        self.observe_leadership()

    def observe_leadership(self) -> None:
        """The lease as metrics; a lead that lapsed shows at once, not at the next claim."""
        context = self.context
        leads = context.leads()
        context.metrics.is_leader.set(1 if leads else 0)
        token = context.leadership.token if leads else None
        context.metrics.fencing_token.set(token or 0)

    def refresh(self) -> GlobalState:
        """Derive the global answer again and show it: metrics, STATUS, a log line on change."""
        context = self.context
        runtime = context.runtime
        summary = runtime.global_state(context.assembly.watchdogs)
        previous = runtime.summary
        if previous is None or previous.trading_state != summary.trading_state:
            runtime.trading_since = context.clock()
            if previous is not None:
                runtime.restored = False  # a new state is no longer the one restored
                summary = replace(summary, restored=False)
                log.warning(
                    "trading_state=%s (was %s): %s",
                    summary.trading_state.name,
                    previous.trading_state.name,
                    summary.reason,
                )
        runtime.summary = summary
        metrics = context.metrics
        metrics.observe_state(
            summary.trading_state,
            summary.health,
            breaker=runtime.breaker_tripped,
            kill=runtime.kill_engaged,
        )
        failing = {name: ordered.failing for name, ordered in runtime.ordered.items()}
        metrics.observe_actions(failing, runtime.releasing)
        metrics.observe_latches(runtime.engaged)
        context.notifier.status(self.role_prefix() + summary.status_line())
        return summary

    def role_prefix(self) -> str:
        """`systemctl status` says which instance acts: "[leader 7] ", "[follower of a] "."""
        leadership = self.context.leadership
        if leadership.role is Role.STANDALONE:
            return ""
        if self.context.leads():
            return f"[leader {leadership.token}] "
        if leadership.role is Role.FOLLOWER:
            return f"[follower of {safe_line(leadership.leader or '?', 40)}] "
        if leadership.role is Role.NO_LEASE:
            acts = "acting without it" if leadership.act_without_lease else "not acting"
            return f"[no lease: {acts}] "
        return f"[{leadership.role.value}] "

"""Acting on decisions: engage actuators concurrently, latch what engaged, escalate failures.

Every action is audited and counted. An action that fails marks health DEGRADED, lets the
policy retry it next cycle, and engages the failed actuator's `on_failure` list at once
(never an actuator already in the chain, so escalation cannot loop). Every action is written
to state_dir as pending before its actuator is called and forgotten once it succeeded, so a
daemon that dies mid-action carries it out when it starts again (supervisor/pending.py). The
latches and orders themselves are kept by engagements.py, which the Reconciler shares.
With [ha] on, only the leader acts; a follower holds its decisions back and takes them up if
it takes over before anybody engaged them.

From the moment an action is ordered its level counts in the trading state as ordered and not
yet confirmed (runtime.Ordered), marked FAILING from its first failed attempt, until its
actuator confirms it (latched, with the watchdog and reason of the decision) or a reset voids
it. Whether it was an engagement or "already engaged" is the actuator's answer (the venue's
truth), never whether this process had it latched.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection
from dataclasses import replace
from typing import Any

import anyio

from supervisor.actuators.base import ActionContext, Actuator, Outcome
from supervisor.daemon.auditing import Auditing
from supervisor.daemon.context import ACTUATOR_TROUBLE, REDIS_TROUBLE, Context
from supervisor.daemon.display import Display
from supervisor.daemon.engagements import Engagements, latch_reason
from supervisor.daemon.publishing import Publishing
from supervisor.errors import first_line
from supervisor.model import Decision, Origin
from supervisor.pending import Order
from supervisor.policy import action_failed
from supervisor.publish.audit import AuditOutcome, action_event, decision_event
from supervisor.text import safe_line

log = logging.getLogger("supervisor")


class Announcement:
    """Audits a cycle's decisions once: after its actions are on their way (they go out
    first), and in any case before the first of those actions' own audit records, so the
    trail and the journal say the decision before what came of it."""

    def __init__(self, context: Context, auditing: Auditing, decisions: list[Decision]) -> None:
        self.context = context
        self.auditing = auditing
        self.decisions = decisions
        self.done = False

    def __call__(self) -> bool:
        """Audit the decisions unless done already; True when it did it now."""
        if self.done:
            return False
        self.done = True
        if not self.context.may_act():  # the leader's trail has the decisions; a follower's held
            return False
        for decision in self.decisions:
            self.auditing.record(decision_event(decision))
        return bool(self.decisions)


def _nothing_to_announce() -> bool:
    return False


class Acting:
    def __init__(
        self,
        context: Context,
        engagements: Engagements,
        display: Display,
        publishing: Publishing,
        auditing: Auditing,
    ) -> None:
        self.context = context
        self.engagements = engagements
        self.display = display
        self.publishing = publishing
        self.auditing = auditing
        # HA follower: per actuator, the newest decision left to the leader. Taken up if this
        # instance takes over while nobody has engaged that actuator (`take_up_held`).
        self.held: dict[str, Decision] = {}

    def announcement(self, decisions: list[Decision]) -> Announcement:
        """What audits `decisions` once, before the first of their actions' records."""
        return Announcement(self.context, self.auditing, decisions)

    def start(
        self, decision: Decision, announce: Callable[[], bool] = _nothing_to_announce
    ) -> list[asyncio.Event]:
        """Engage each of the decision's actuators in the background; stamped with the
        fencing token of this instance's lease (with [ha] on) unless it has one already.
        Returns one event per actuator, set once its action is on its way. `announce`
        audits the decision, at the latest before the first action's own record."""
        token = self.context.leadership.token
        if decision.fencing_token is None and token is not None:
            decision = replace(decision, fencing_token=token)
        actuators = self.context.assembly.actuators
        dispatched = []
        for name in decision.actuators:
            sent = asyncio.Event()
            self.context.tasks.spawn(self._act(decision, actuators[name], sent, announce))
            dispatched.append(sent)
        if dispatched:  # readers of {ns}:state see the order as soon as it is on its way
            self.context.tasks.spawn(self._publish_once_sent(dispatched))
        return dispatched

    async def _publish_once_sent(self, dispatched: list[asyncio.Event]) -> None:
        for sent in dispatched:
            await sent.wait()
        await self.publishing.publish_state()  # refreshes STATUS and metrics first

    async def _act(
        self,
        decision: Decision,
        actuator: Actuator,
        sent: asyncio.Event,
        announce: Callable[[], bool],
    ) -> None:
        try:
            await self._carry_out(decision, actuator, sent.set, announce)
        finally:
            sent.set()  # held back, refused, done or failed: on its way or never will be

    async def _carry_out(
        self,
        decision: Decision,
        actuator: Actuator,
        sent: Callable[[], None],
        announce: Callable[[], bool],
    ) -> None:
        if not self.context.may_act():  # checked as late as possible: a lease can lapse
            self._hold(replace(decision, actuators=(actuator.name,)), actuator.name)
            return
        if self.context.assembly.settings.supervisor.dry_run:
            self._would_act(decision, actuator)
            return
        self.engagements.order(decision, actuator)
        await self.engagements.write_order(actuator.name, decision)
        now = self.context.clock()
        started = time.perf_counter()
        context = ActionContext(
            self.context.assembly.instance_id,
            now,
            sent,
            lambda why: self._attempt_failed(decision, actuator, why),
        )
        try:
            with anyio.fail_after(actuator.max_duration_s):
                outcome = await actuator.engage(decision, context)
        except Exception as exc:
            if not isinstance(exc, ACTUATOR_TROUBLE):  # a bug: show it, still retry and escalate
                log.exception("bug: actuator=%s raised while engaging", actuator.name)
            took_ms = (time.perf_counter() - started) * 1000
            await self._failed(decision, actuator, exc, took_ms, announce)
            return
        sent()  # done, whether or not the actuator said when it was on its way
        took_ms = (time.perf_counter() - started) * 1000
        await self._succeeded(decision, actuator, outcome, took_ms, announce)

    def _attempt_failed(self, decision: Decision, actuator: Actuator, why: str) -> None:
        """One attempt failed (the action still retries): a failing kill shows at once."""
        if self.engagements.failing(actuator.name, safe_line(why, 200)):
            log.error(
                "action actuator=%s failing for watchdog=%s incident=%s: %s (retrying)",
                actuator.name,
                decision.source,
                decision.incident_id,
                safe_line(why, 200),
            )
        self.display.refresh()
        self.publishing.publish_soon("state", self.publishing.publish_state)

    def _hold(self, decision: Decision, name: str) -> None:
        leadership = self.context.leadership
        previous = self.held.get(name)
        if previous is None or previous.incident_id != decision.incident_id:
            log.info(
                "follower: leaves %s for watchdog=%s to the leader (%s): %s",
                name,
                decision.source,
                safe_line(leadership.leader or "none", 80),
                decision.reason,
            )
        self.held[name] = decision

    async def adopt_orders(self) -> set[str]:
        """Just took over: carry out the orders the old leader sent and did not see done,
        as they were (the same incident id and fencing token, so the same Idempotency-Key:
        a venue that deduplicates acts once). Returns the actuators ordered."""
        shared = self.context.assembly.orders
        if shared is None:
            return set()
        try:
            with anyio.fail_after(self.context.assembly.redis_timeout_s * 2):
                orders = await shared.load(self.context.assembly.actuators)
        except REDIS_TROUBLE as exc:
            self.publishing.redis_failed(exc)
            return set()
        adopted = set()
        for found in orders:
            if self._moot(found):
                self.context.tasks.spawn(self.publishing.publish(shared.done(found.actuator)))
                continue
            decision = found.decision
            log.warning(
                "taking over: carrying out the order for %s (incident %s, fencing token %s)"
                " that the previous leader did not see done: %s",
                found.actuator,
                decision.incident_id,
                decision.fencing_token,
                decision.reason,
            )
            adopted.add(found.actuator)
            self.start(decision)
        return adopted

    def _moot(self, found: Order) -> bool:
        """Done (latched), gone from the config, or voided by a later manual reset."""
        name = found.actuator
        resets = self.context.runtime.resets or {}
        engaged = name in self.context.runtime.engaged
        gone = name not in self.context.assembly.actuators
        return engaged or gone or found.voided_by(resets.get(name))

    def forget_held(self, name: str) -> None:
        """A manual reset of `name` voids what this instance held back for it: taken up at a
        later takeover, it would engage again what the operator released."""
        self.held.pop(name, None)

    def take_up_held(self, adopted: Collection[str] = ()) -> None:
        """Just took over: engage what this instance held back as a follower, unless it is
        engaged already (the old leader did it), was ordered by the old leader (`adopted`)
        or the incident it was for has ended."""
        held, self.held = self.held, {}
        runtime = self.context.runtime
        for name, decision in held.items():
            if name in runtime.engaged or name in adopted:
                continue
            if name not in self.context.assembly.actuators:
                continue
            if decision.origin is Origin.WATCHDOG:
                state = runtime.policy.get(decision.watchdog)
                incident = state.incident if state is not None else None
                if incident is None or incident.id != decision.incident_id:
                    continue
            log.warning(
                "taking over: engaging %s for watchdog=%s, which nobody has engaged: %s",
                name,
                decision.source,
                decision.reason,
            )
            self.start(replace(decision, fencing_token=None))

    def _would_act(self, decision: Decision, actuator: Actuator) -> None:
        verb = f"{actuator.name} ({actuator.level.name})"
        log.warning(
            "dry_run: would engage %s for watchdog=%s: %s", verb, decision.source, decision.reason
        )
        self.context.metrics.actions.labels(actuator.name, "dry_run").inc()
        self.auditing.record(
            action_event(decision, actuator.name, AuditOutcome.DRY_RUN, detail={"would": verb})
        )

    async def _succeeded(
        self,
        decision: Decision,
        actuator: Actuator,
        outcome: Outcome,
        took_ms: float,
        announce: Callable[[], bool],
    ) -> None:
        context = self.context
        result = "engaged" if outcome.changed else "already_engaged"
        await self._report(
            decision,
            actuator,
            announce,
            result,
            AuditOutcome.OK if outcome.changed else AuditOutcome.UNCHANGED,
            duration_ms=took_ms,
            response_code=outcome.response_code,
            detail={"detail": outcome.detail},
        )
        reason = latch_reason(actuator.name, decision)
        if self.engagements.confirm(actuator, reason, decision.watchdog):
            self.display.refresh()
            await self.publishing.publish_state()  # readers of {ns}:state see the trip now
        log.warning(
            "action actuator=%s outcome=%s watchdog=%s severity=%s incident=%s took_ms=%.1f "
            "since_decision_ms=%.1f reason=%s",
            actuator.name,
            result,
            decision.source,
            decision.severity.name,
            decision.incident_id,
            took_ms,
            (context.clock() - decision.at) * 1000,
            decision.reason,
        )

    async def _failed(
        self,
        decision: Decision,
        actuator: Actuator,
        exc: Exception,
        took_ms: float,
        announce: Callable[[], bool],
    ) -> None:
        context = self.context
        detail = first_line(exc)
        await self._report(
            decision,
            actuator,
            announce,
            "failed",
            AuditOutcome.FAILED,
            duration_ms=took_ms,
            detail={"error": detail},
        )
        log.error(
            "action actuator=%s outcome=failed watchdog=%s incident=%s: %s (retrying next cycle)",
            actuator.name,
            decision.source,
            decision.incident_id,
            detail,
        )
        self.engagements.failing(actuator.name, detail)
        self.display.refresh()
        state = context.runtime.policy.get(decision.watchdog)
        if state is not None:
            context.runtime.policy[decision.watchdog] = action_failed(state, decision.severity)
        self._escalate(decision, actuator, detail)

    async def _report(
        self,
        decision: Decision,
        actuator: Actuator,
        announce: Callable[[], bool],
        result: str,
        outcome: AuditOutcome,
        **fields: Any,
    ) -> None:
        """An action's audit record (`duration_ms`, `response_code`, `detail`) and count,
        after the decision's own record (announce)."""
        if announce():
            await asyncio.sleep(0)  # the decision's journal line goes first
        self.auditing.record(action_event(decision, actuator.name, outcome, **fields))
        self.context.metrics.actions.labels(actuator.name, result).inc()

    def _escalate(self, decision: Decision, failed: Actuator, detail: str) -> None:
        """Engage the failed actuator's `on_failure` list (never one already in the chain)."""
        chain = (*decision.escalated_from, failed.name)
        escalations = self.context.assembly.protection.escalations
        targets = tuple(name for name in escalations.get(failed.name, ()) if name not in chain)
        if not targets:
            return
        log.error(
            "escalating: %s failed (%s): engaging %s", failed.name, detail, ", ".join(targets)
        )
        reason = f"escalated: {failed.name} failed; {decision.reason}"
        self.start(replace(decision, actuators=targets, reason=reason, escalated_from=chain))

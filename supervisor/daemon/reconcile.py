"""Reconciling what is latched with the real stores: restore at start (and carry out the
actions a crash interrupted), then every housekeeping pass: resets written by
`trading-supervisor reset`, engagements made elsewhere (manually or by another supervisor),
the actuators' real state, and the one automatic release (`auto_reset_after` on a
reduce_only breaker).

A reset of an actuator whose store is read back waits for that store to read released: until
then trading stays at its level ("reset, waiting for the venue to release"), it is never
engaged again on its own, and a store still engaged RELEASE_WAIT_WARN_S after the reset is
said once (journal, DEGRADED). A store found engaged while an action on it is still on its
way is latched for that action's decision."""

from __future__ import annotations

import logging
import uuid

import anyio

from supervisor.actuators.base import ActionContext, Actuator
from supervisor.constants import RELEASE_WAIT_WARN_S
from supervisor.daemon.acting import Acting
from supervisor.daemon.auditing import Auditing
from supervisor.daemon.context import ACTUATOR_TROUBLE, REDIS_TROUBLE, Context
from supervisor.daemon.display import Display
from supervisor.daemon.engagements import Engagements, latch_reason
from supervisor.daemon.problems import Source
from supervisor.daemon.publishing import Publishing
from supervisor.daemon.runtime import Releasing
from supervisor.keys import reset_key
from supervisor.latch import Latch, merge, without_reset
from supervisor.model import Decision, Origin, Status
from supervisor.pending import Order
from supervisor.policy import Incident, PolicyState
from supervisor.publish.audit import AuditEvent, AuditKind, AuditOutcome
from supervisor.quantities import format_duration

log = logging.getLogger("supervisor")


class Reconciler:
    def __init__(
        self,
        context: Context,
        engagements: Engagements,
        acting: Acting,
        display: Display,
        publishing: Publishing,
        auditing: Auditing,
    ) -> None:
        self.context = context
        self.engagements = engagements
        self.acting = acting  # only to start actions
        self.display = display
        self.publishing = publishing
        self.auditing = auditing
        self._read: set[str] = set()  # actuators whose store has been read since the start
        self._told_released: set[str] = set()  # latched, found released at the venue: said

    async def restore(self) -> None:
        """Merge the engagements persisted in state_dir and Redis (the most restrictive wins),
        then carry out the actions a crash interrupted."""
        published = await self._read_redis()
        from_redis, resets = published or ({}, {})
        self.context.runtime.resets = resets if published is not None else None
        self._restore_latches(from_redis, resets)
        self._resume_pending()

    def _restore_latches(self, from_redis: dict[str, Latch], resets: dict[str, int]) -> None:
        context = self.context
        from_file = context.assembly.latches.load_file()
        restored = without_reset(merge(from_file, from_redis), resets)
        if not restored:
            return
        context.runtime.engaged.update(restored)
        context.runtime.restored = True
        summary = self.display.refresh()
        found = [name for name, found in (("state_dir", from_file), ("redis", from_redis)) if found]
        sources = " and ".join(found)
        log.warning(
            "restored trading_state=%s from %s: %s",
            summary.trading_state.name,
            sources,
            "; ".join(f"{n} ({latch.reason})" for n, latch in restored.items()),
        )
        reason = f"restored {summary.trading_state.name} from {sources}"
        self.auditing.record(
            AuditEvent.new(AuditKind.STATE, reason=reason, outcome=AuditOutcome.RESTORED)
        )

    def _resume_pending(self) -> None:
        """Order again, with the same incident id (so the same Idempotency-Key), what a crash
        interrupted: unless a reset came after it, or it is latched (it was done)."""
        context = self.context
        orders = context.assembly.pending.load()
        resets = context.runtime.resets
        voided = set()
        if resets is not None:
            voided = {o.key for o in self.engagements.void_pending(resets)}
        for interrupted in orders:
            name, decision = interrupted.actuator, interrupted.decision
            if interrupted.key in voided:
                log.warning("actuator=%s: a reset came after the interrupted action", name)
            elif name not in context.assembly.actuators or name in context.runtime.engaged:
                self.engagements.pending_done(name)  # gone from the config, or it was done
            else:
                log.warning(
                    "resuming action actuator=%s incident=%s interrupted by a restart: %s",
                    name,
                    decision.incident_id,
                    decision.reason,
                )
                self._continue_incident(interrupted)
                self.acting.start(decision)

    def _continue_incident(self, interrupted: Order) -> None:
        """The watchdog's incident goes on after the restart under the same id: if it still
        breaches, it orders its actions again with the same Idempotency-Key, not a new one."""
        decision = interrupted.decision
        runtime = self.context.runtime
        if decision.origin is not Origin.WATCHDOG or decision.watchdog in runtime.policy:
            return
        if decision.watchdog in self.context.assembly.watchdogs:
            incident = Incident(id=decision.incident_id, started_at=decision.at)
            runtime.policy[decision.watchdog] = PolicyState(incident=incident)

    async def refresh(self) -> None:
        """One pass: resets, engagements made elsewhere, real state, auto-reset."""
        published = await self._read_redis()
        if published is None:
            return
        latches, read = published
        previous = self.context.runtime.resets
        resets = highest(previous or {}, read)  # Redis may have lost some: they still hold
        self.context.runtime.resets = resets
        if previous is not None:
            self._note_resets(newly_reset(previous, resets))
        self._apply_resets(resets)
        self.engagements.void_pending(resets)
        fresh = without_reset(latches, resets)
        for name, latch in fresh.items():
            if name in self.context.runtime.engaged:
                self.engagements.take_number(name, latch)
                continue
            log.warning(
                "actuator=%s engaged elsewhere (manual or another supervisor): %s",
                name,
                latch.reason,
            )
            self.engagements.keep(name, latch)
        self._rewrite_lost(latches)
        await self._keep_counter()
        await self._keep_resets(read)
        for actuator in self.context.assembly.actuators.values():
            if actuator.readable:
                await self._check_real_state(actuator)
        await self._auto_reset()

    def _rewrite_lost(self, published: dict[str, Latch]) -> None:
        """Write back what Redis lost (a FLUSHALL, a restart without persistence): a peer or a
        restart that also lost state_dir must still see every engagement, above all those it
        cannot read back from a store (an HTTP kill switch, a command)."""
        assembly = self.context.assembly
        lost = {n: latch for n, latch in self.context.runtime.engaged.items() if n not in published}
        if lost:
            log.warning(
                "%s lost %s: writing it back", assembly.latches.key, ", ".join(sorted(lost))
            )
        for name, latch in lost.items():
            self.context.tasks.spawn(self.engagements.write_to_redis(name, latch))

    async def _keep_counter(self) -> None:
        """Keep `{ns}:seq` at the highest number this instance knows (its latches, every
        latch and reset it read): lost with Redis, it would number an operator's reset below
        a latch still engaged here, and the reset would release nothing."""
        context = self.context
        known = max((latch.seq or 0 for latch in context.runtime.engaged.values()), default=0)
        try:
            with anyio.fail_after(context.assembly.redis_timeout_s * 2):
                await context.assembly.latches.keep_counter(known)
        except REDIS_TROUBLE as exc:
            self.publishing.redis_failed(exc)

    async def _keep_resets(self, read: dict[str, int]) -> None:
        """Write back the resets this instance has read that Redis lost (a FLUSHALL, a
        restart without persistence): a daemon that restarts from its state_dir, or was
        down when the reset came, must still see its latch voided."""
        context = self.context
        known = context.runtime.resets or {}
        lost = sorted(name for name, number in known.items() if read.get(name, 0) < number)
        if not lost:
            return
        where = reset_key(context.assembly.latches.namespace)
        log.warning("%s lost the reset of %s: writing it back", where, ", ".join(lost))
        try:
            with anyio.fail_after(context.assembly.redis_timeout_s * 2):
                await context.assembly.latches.keep_resets({n: known[n] for n in lost})
        except REDIS_TROUBLE as exc:
            self.publishing.redis_failed(exc)

    async def _read_redis(self) -> tuple[dict[str, Latch], dict[str, int]] | None:
        """(latches, resets) as published in Redis, or None when Redis cannot answer."""
        try:
            with anyio.fail_after(self.context.assembly.redis_timeout_s * 2):
                return await self.context.assembly.latches.load_redis()
        except REDIS_TROUBLE as exc:
            self.publishing.redis_failed(exc)
            return None

    def _note_resets(self, names: set[str]) -> None:
        """A manual reset of `names`: forget what this process remembers of engaging them and
        the orders it has not seen confirmed; a readable store must read released before
        the reset is complete (until then the reset waits for the venue)."""
        runtime = self.context.runtime
        for name in sorted(names):
            actuator = self.context.assembly.actuators.get(name)
            if actuator is None:
                continue
            actuator.note_reset()
            self.engagements.void_order(name)
            self.acting.forget_held(name)
            self._told_released.discard(name)
            runtime.problems.clear(Source.RELEASE, name)
            if actuator.readable:
                runtime.releasing[name] = Releasing(actuator.level, self.context.clock())
        if names:
            self.display.refresh()

    def _apply_resets(self, resets: dict[str, int]) -> None:
        if self.engagements.drop_reset(resets):
            self.display.refresh()

    async def _check_real_state(self, actuator: Actuator) -> None:
        context = self.context
        timeout_s = max(context.assembly.redis_timeout_s, actuator.read_timeout_s)
        try:
            with anyio.fail_after(timeout_s):
                engaged = await actuator.is_engaged()
        except ACTUATOR_TROUBLE as exc:
            if actuator.reads_own_redis:
                self.publishing.redis_failed(exc)
            else:
                context.runtime.problems.failed(Source.ACTUATOR, exc, actuator.name)
            return
        first_read = actuator.name not in self._read
        self._read.add(actuator.name)
        if engaged:
            self._found_engaged(actuator, first_read)
            return
        if actuator.name in context.runtime.engaged:
            await self._resets_again()  # a reset between this pass's read and the release
        self._found_released(actuator)

    async def _resets_again(self) -> None:
        """Read the resets again before taking a release for one without a reset: `reset`
        records its reset, then releases; this pass may have read the resets in between."""
        published = await self._read_redis()
        if published is None:
            return
        resets = published[1]
        previous = self.context.runtime.resets or {}
        if resets != previous:
            self.context.runtime.resets = resets
            self._note_resets(newly_reset(previous, resets))
            self._apply_resets(resets)

    def _found_engaged(self, actuator: Actuator, first_read: bool) -> None:
        runtime = self.context.runtime
        name = actuator.name
        runtime.problems.clear(Source.ACTUATOR, name)  # its store answers
        if name in self._told_released:
            self._told_released.discard(name)
            runtime.problems.clear(Source.RELEASE, name)
        if name in runtime.engaged:
            return
        ordered = self.engagements.ordered_decision(name)
        if ordered is not None:  # the action's own answer is on its way: it engaged it
            runtime.releasing.pop(name, None)
            self.engagements.latch(actuator, latch_reason(name, ordered), ordered.watchdog)
            return
        resets = runtime.resets or {}
        if name not in runtime.releasing and first_read and name in resets:
            # Started after a reset that its store has not followed yet (a restart between
            # a reset and the venue's release): the reset waits, nothing is latched.
            runtime.releasing[name] = Releasing(actuator.level, self.context.clock())
            self.display.refresh()
        waiting = runtime.releasing.get(name)
        if waiting is not None:
            self._still_waiting(name, waiting)
        else:
            self.engagements.latch(actuator, f"{name} engaged (found in its store)")

    def _still_waiting(self, name: str, waiting: Releasing) -> None:
        """A reset whose store still reads engaged: said once when it has waited long."""
        waited_s = self.context.clock() - waiting.since
        if waiting.told or waited_s < RELEASE_WAIT_WARN_S:
            return
        waiting.told = True
        log.error(
            "actuator=%s: reset %s ago, and its store still reads engaged: release it at the"
            " venue (it is not engaged again on its own)",
            name,
            format_duration(waited_s),
        )
        problem = f"reset {format_duration(waited_s)} ago, still engaged at the venue"
        self.context.runtime.problems.note(Source.RELEASE, problem, name)
        self.display.refresh()

    def _found_released(self, actuator: Actuator) -> None:
        context = self.context
        runtime = context.runtime
        name = actuator.name
        runtime.problems.clear(Source.ACTUATOR, name)  # its store answers
        if runtime.releasing.pop(name, None) is not None:
            log.warning("actuator=%s released at the venue: the reset is complete", name)
            runtime.problems.clear(Source.RELEASE, name)
            self.display.refresh()
        latch = runtime.engaged.get(name)
        if latch is None:
            return
        if actuator.relatch_on_release or self._incident_open(latch.watchdog):
            self._engage_again(actuator, latch)
        elif name not in self._told_released:
            self._told_released.add(name)
            log.error(
                "actuator=%s released at the venue without a reset: trading stays %s here"
                " until `trading-supervisor reset` (not engaged again: its incident is over)",
                name,
                latch.level.name,
            )
            runtime.problems.note(Source.RELEASE, "released at the venue without a reset", name)
            self.display.refresh()

    def _incident_open(self, watchdog: str) -> bool:
        state = self.context.runtime.policy.get(watchdog)
        return state is not None and state.incident is not None

    def _engage_again(self, actuator: Actuator, latch: Latch) -> None:
        """Latched but released without a recorded reset (flushed Redis, an unaudited write):
        nothing automatic ever un-trips, so engage it again, under an incident of its own per
        latch (a venue that deduplicates by key must act on a later latch's order too)."""
        log.error("actuator=%s found released without a reset: engaging it again", actuator.name)
        stamp = latch.seq if latch.seq is not None else uuid.uuid5(uuid.NAMESPACE_OID, repr(latch))
        self.acting.start(
            Decision(
                watchdog="",
                severity=Status.BREACH,
                actuators=(actuator.name,),
                reason=latch.reason,
                incident_id=f"latch-{stamp}",
                at=self.context.clock(),
                origin=Origin.LATCH,
            )
        )

    async def _auto_reset(self) -> None:
        """The one automatic release: a reduce_only breaker with `auto_reset_after`, once that
        long has passed and the watchdog that tripped it has been OK for `clear_after`. Only
        a leader releases (with [ha] on); never without a lease: a release is no safety move."""
        if not self.context.leads():
            return
        for name, latch in list(self.context.runtime.engaged.items()):
            actuator = self.context.assembly.actuators.get(name)
            if actuator is not None and self._may_auto_reset(actuator, latch):
                await self._release(actuator, latch)

    def _may_auto_reset(self, actuator: Actuator, latch: Latch) -> bool:
        after_s = actuator.auto_reset_after_s
        if after_s is None or self.context.clock() - latch.at < after_s:
            return False
        policy = self.context.runtime.policy.get(latch.watchdog)
        return policy is not None and policy.incident is None and policy.status is Status.OK

    async def _release(self, actuator: Actuator, latch: Latch) -> None:
        context = self.context
        assembly = context.assembly
        now = context.clock()
        try:  # the reset marker first: the release must never look like a lost breaker
            await assembly.latches.record_reset([actuator.name])
            await actuator.disengage(ActionContext(assembly.instance_id, now))
        except ACTUATOR_TROUBLE as exc:
            self.publishing.redis_failed(exc)
            return
        self.engagements.drop(actuator.name)
        reason = f"auto_reset_after: {latch.watchdog} OK for clear_after"
        self.auditing.record(
            AuditEvent.new(
                AuditKind.STATE,
                actuator=actuator.name,
                reason=reason,
                outcome=AuditOutcome.RELEASED,
            )
        )
        log.warning(
            "audit auto_reset actuator=%s after %.0fs: watchdog=%s OK for clear_after",
            actuator.name,
            now - latch.at,
            latch.watchdog,
        )
        self.display.refresh()


def highest(*resets: dict[str, int]) -> dict[str, int]:
    """Each actuator's latest reset number among `resets`."""
    merged: dict[str, int] = {}
    for numbers in resets:
        for name, number in numbers.items():
            merged[name] = max(number, merged.get(name, number))
    return merged


def newly_reset(before: dict[str, int], after: dict[str, int]) -> set[str]:
    """The actuators a reset numbered higher than the last one seen released since."""
    return {name for name, seq in after.items() if seq > before.get(name, 0)}

"""Keeping the HA lease: claim it at start, renew it every third of lease_ttl, follow the
holder while another instance leads (asking again the moment its lease would expire), give
it up on a clean stop. Every change of role is logged, audited and counted; taking over
starts with a reconcile pass (what the old leader latched) and then the actions this
instance held back as a follower that nobody has taken yet.

One instance id, one process (lease.py): at start, another process that holds this id and
renews it while this one watches (at most lease_ttl) is alive, and this one is refused
(`IdentityInUse`, exit 78). One that lets it expire was a dead predecessor (a SIGKILL, a
crash before the restart): the id is taken over. One that neither renews nor lets it expire
within the watch cannot be told apart: this process runs, acts on nothing, and says so
(journal, STATUS, `status`, `supervisor_instance_id_conflict`) until the id is its own. So
does a running process that finds its id taken by another (it was paused long enough to
look dead): it stops leading at once.

A process that has seen no fencing token since it started, and finds no counter in Redis
(Redis lost it, or the stack is new), claims nothing, not even its id, for one lease_ttl
from when it found it missing (again, after each loss: a duplicate that only ever saw its
id held by another has seen no token, however long it has run):
an instance that has been running knows the highest token and claims first, above it, and
holds its id again. Without the wait a new process (a duplicate id, a wiped state_dir)
could take token 1 after 60, and a venue that keeps the highest token would refuse its
kill. A new stack pays one lease_ttl before its first leader.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import anyio

from supervisor.constants import EX_CONFIG
from supervisor.daemon.auditing import Auditing
from supervisor.daemon.context import REDIS_TROUBLE, Context
from supervisor.daemon.display import Display
from supervisor.daemon.problems import Source
from supervisor.daemon.publishing import Publishing
from supervisor.ha.leadership import Leadership, Role
from supervisor.ha.lease import (
    CounterMissing,
    Granted,
    HeldElsewhere,
    IdentityTaken,
    LeaseStore,
)
from supervisor.ha.token_memory import TokenMemory
from supervisor.publish.audit import AuditEvent, AuditKind, AuditOutcome
from supervisor.text import safe_line

log = logging.getLogger("supervisor")

FOLLOWER_POLL_MIN_S = 0.05  # asks again no sooner than this, whatever the holder's TTL says
UNANSWERED_BEFORE_NO_LEASE = 2  # unanswered claims in a row before "Redis cannot be reached"
EXPIRY_SLACK_S = 0.01  # asks this long after the holder's lease would have expired
PTTL_RESOLUTION_S = 0.002  # Redis answers PTTL in whole milliseconds


Reply = Granted | HeldElsewhere | IdentityTaken | CounterMissing | None


class IdentityInUse(Exception):
    """Another live process runs with this instance id: this one must not start."""

    exit_code = EX_CONFIG


class LeaseKeeper:
    def __init__(
        self,
        context: Context,
        store: LeaseStore,
        take_over: Callable[[], Coroutine[Any, Any, None]],
        display: Display,
        publishing: Publishing,
        auditing: Auditing,
    ) -> None:
        self.context = context
        self.store = store
        self.take_over = take_over
        self.display = display
        self.publishing = publishing
        self.auditing = auditing
        self.monotonic = context.monotonic
        # The highest fencing token seen (a new one must be above it), kept across restarts.
        self.tokens = TokenMemory(context.assembly.settings.supervisor.state_dir)
        self.tokens.load()  # before any claim: a small file, read once
        self._save_failing = False
        self._next_in_s = 0.0
        self._seen_live_token = False  # a token or counter read from Redis since start
        self._unanswered = 0  # claims unanswered in a row
        self._wait_until: float | None = None  # monotonic: when the counter was found missing

    @property
    def leadership(self) -> Leadership:
        return self.context.leadership

    async def run(self) -> None:
        """The lease loop, until cancelled by the shutdown."""
        while True:
            await asyncio.sleep(self._next_in_s)
            try:
                await self.claim()
            except Exception:  # a bug: show it, and keep the lease loop (and its lapse) alive
                log.exception("bug: the lease claim failed")
                self._next_in_s = self.leadership.lease_ttl_s / 3

    async def start(self) -> None:
        """The first claim, before the first cycle; IdentityInUse when another live process
        holds this instance id (it renewed its hold while this one watched)."""
        deadline = self.monotonic() + self.leadership.lease_ttl_s + EXPIRY_SLACK_S
        seen: HoldSeen | None = None
        while True:
            sent_at = self.monotonic()
            reply = await self._ask()
            await self._remember(reply)
            if not isinstance(reply, IdentityTaken):
                self._apply(reply, sent_at)  # the id is this process's
                return
            hold = HoldSeen.of(reply, sent_at, self.monotonic())
            if seen is not None and renewed(seen, hold):
                raise IdentityInUse(
                    f"instance_id {self.leadership.instance!r} is in use: another live"
                    f" trading-supervisor holds it in namespace"
                    f" {self.context.assembly.namespace!r} (it renewed its hold while this"
                    " one watched). Give each instance its own [supervisor] instance_id."
                )
            if self.monotonic() >= deadline:
                self._apply(reply, sent_at)  # nobody can tell whether it lives: _duplicate
                return
            if seen is None:
                log.warning(
                    "instance_id %r is held by another process (boot %s): waiting up to %.1fs"
                    " to see whether it is alive",
                    self.leadership.instance,
                    safe_line(reply.owner, 40),
                    deadline - self.monotonic(),
                )
            seen = hold
            await asyncio.sleep(self._watch_wait_s(reply))

    def _watch_wait_s(self, reply: IdentityTaken) -> float:
        """Until the hold would expire, but no longer than a renewal period."""
        third_s = self.leadership.lease_ttl_s / 3
        if reply.remaining_s is None:
            return third_s
        return max(FOLLOWER_POLL_MIN_S, min(reply.remaining_s + EXPIRY_SLACK_S, third_s))

    async def claim(self) -> None:
        """Renew or acquire once; learn who leads; act on a change of role."""
        sent_at = self.monotonic()
        reply = await self._ask()
        await self._remember(reply)  # on disk before this instance acts with a new token
        self._apply(reply, sent_at)

    async def _ask(self) -> Reply:
        """One claim; None when Redis did not answer (noted as a problem)."""
        leadership = self.leadership
        try:
            with anyio.fail_after(
                min(self.context.assembly.redis_timeout_s * 2, leadership.lease_ttl_s / 3)
            ):
                return await self.store.claim(
                    leadership.token, self.tokens.highest, self._must_wait()
                )
        except REDIS_TROUBLE as exc:
            self.publishing.redis_failed(exc)
            return None

    def _must_wait(self) -> bool:
        """Whether a claim must leave a missing counter alone: this process has seen no
        token since it started, and has not yet waited one lease_ttl since it found the
        counter missing (module docstring)."""
        if self._seen_live_token:
            return False
        return self._wait_until is None or self.monotonic() < self._wait_until

    async def _remember(self, reply: Reply) -> None:
        """Note the tokens a claim saw (its own, or the leader's and the counter), and keep
        the highest in state_dir when it grew: a restart then claims above it even if Redis
        lost the counter. A failed write is said (once) and tried again on the next claim."""
        if isinstance(reply, Granted):
            self.tokens.see(reply.token)
            self._seen_live_token = True
        elif isinstance(reply, HeldElsewhere):
            self.tokens.see(reply.token)
            self.tokens.see(reply.counter)
            self._seen_live_token = self._seen_live_token or reply.counter is not None
        if not self.tokens.unsaved():
            return
        try:
            await anyio.to_thread.run_sync(self.tokens.save)
        except OSError as exc:
            if not self._save_failing:
                log.error(
                    "lease: cannot keep fencing token %d in %s (%s): a restart while Redis"
                    " lost the counter could issue a lower one",
                    self.tokens.highest,
                    self.tokens.path,
                    exc.strerror or exc,
                )
            self._save_failing = True
            return
        if self._save_failing:
            log.warning(
                "lease: fencing token %d kept in %s again", self.tokens.highest, self.tokens.path
            )
        self._save_failing = False

    def _apply(self, reply: Reply, sent_at: float) -> None:
        leadership = self.leadership
        third_s = leadership.lease_ttl_s / 3
        if reply is not None:
            self._unanswered = 0
        if reply is not None and not isinstance(reply, CounterMissing):
            self._wait_until = None  # the counter was there: a later loss is waited for anew
        if isinstance(reply, CounterMissing):
            self._next_in_s = self._counter_missing(reply, sent_at)
        elif reply is None:
            self._unanswered += 1
            # One unanswered claim may be this process's own pause (a claim sent before a
            # SIGSTOP times out after SIGCONT): only the next one, a renewal period later,
            # says that Redis cannot be reached.
            sure = self._unanswered >= UNANSWERED_BEFORE_NO_LEASE
            if sure and leadership.unreachable(self.monotonic()):
                self._lost("Redis cannot be reached and the lease may have expired")
            self._next_in_s = third_s
        elif isinstance(reply, IdentityTaken):
            self._duplicate(reply)
            self._next_in_s = third_s
        elif isinstance(reply, Granted):
            self._own_id()
            self._granted(reply.token, sent_at)
            self._next_in_s = third_s
        else:
            self._own_id()
            self._held_elsewhere(reply, sent_at)
            self._next_in_s = max(
                FOLLOWER_POLL_MIN_S, min(third_s, reply.remaining_s + EXPIRY_SLACK_S)
            )
        self.display.observe_leadership()

    def _counter_missing(self, reply: CounterMissing, sent_at: float) -> float:
        """Wait one lease_ttl from the first sight of the missing counter (module
        docstring), holding decisions like a follower; how long until the next claim."""
        leadership = self.leadership
        if self._wait_until is None:
            self._wait_until = sent_at + leadership.lease_ttl_s
            log.warning(
                "lease: Redis holds no fencing counter and this process has seen no token"
                " since it started: it claims nothing for %.1fs, so that an instance that"
                " knows the highest token claims first (Redis lost the counter, or the"
                " stack is new)",
                leadership.lease_ttl_s,
            )
        if leadership.lost(reply.holder, reply.token):
            self._lost("Redis lost the fencing counter")
        leadership.role = Role.WAITING
        left_s = self._wait_until - self.monotonic() + EXPIRY_SLACK_S
        return max(FOLLOWER_POLL_MIN_S, min(leadership.lease_ttl_s / 3, left_s))

    def _duplicate(self, reply: IdentityTaken) -> None:
        """Another process holds this instance id: lead no more, act on nothing, say so."""
        leadership, problems = self.leadership, self.context.runtime.problems
        why = (
            f"another process (boot {safe_line(reply.owner, 40)}) runs with instance_id"
            f" {safe_line(leadership.instance, 80)}"
        )
        if leadership.duplicate():
            self._lost(why)
        if not problems.has(Source.INSTANCE_ID):
            log.error(
                "identity: %s (this process is boot %s); this one acts on nothing until the"
                " ids differ: give each instance its own [supervisor] instance_id",
                why,
                self.store.boot,
            )
            problems.note(Source.INSTANCE_ID, f"{why}: acting on nothing")
            self.display.refresh()
        self.context.metrics.instance_id_conflict.set(1)

    def _own_id(self) -> None:
        """The instance id is this process's (again): clear a duplicate's problem."""
        if self.context.runtime.problems.clear(Source.INSTANCE_ID):
            log.warning(
                "identity: instance_id %r is this process's again", self.leadership.instance
            )
            self.display.refresh()
        self.context.metrics.instance_id_conflict.set(0)

    def _granted(self, token: int, sent_at: float) -> None:
        leadership = self.leadership
        previous = leadership.token
        if not leadership.won(token, sent_at):
            return
        if previous is not None:  # it led: its lease lapsed (a pause), or was taken over
            log.warning("leader: the lease with fencing token %d had lapsed", previous)
        log.warning("leader: this instance leads now (fencing token %d)", token)
        self.auditing.record(
            AuditEvent.new(
                AuditKind.LEADERSHIP,
                outcome=AuditOutcome.ACQUIRED,
                reason=f"took the lease (fencing token {token})",
            )
        )
        self.context.tasks.spawn(self.take_over())

    def _held_elsewhere(self, reply: HeldElsewhere, sent_at: float) -> None:
        leadership = self.leadership
        known = leadership.role is Role.FOLLOWER and leadership.leader == reply.holder
        if leadership.lost(reply.holder, reply.token, sent_at + reply.remaining_s):
            self._lost(f"{safe_line(reply.holder, 80)} holds the lease")
        elif not known and reply.holder == leadership.instance:
            log.warning(
                "follower: an earlier process with this instance_id holds the lease (fencing"
                " token %s) until it expires; this one takes it then",
                reply.token if reply.token is not None else "?",
            )
        elif not known:
            log.info(
                "follower: %s leads (fencing token %s); this instance evaluates and publishes,"
                " and leaves the actions to it",
                safe_line(reply.holder, 80),
                reply.token if reply.token is not None else "?",
            )

    def _lost(self, why: str) -> None:
        log.error("leader: this instance no longer leads: %s; it acts no more", why)
        self.auditing.record(
            AuditEvent.new(AuditKind.LEADERSHIP, outcome=AuditOutcome.LOST, reason=why)
        )

    async def release(self) -> None:
        """On a clean stop: give the lease up so that a follower takes over at once, and the
        instance id so that a restart need not wait for it to expire."""
        token = self.leadership.token
        if token is not None and not self.leadership.leads(self.monotonic()):
            token = None  # a lapsed lease may be another's by now: only the id is given up
        try:
            with anyio.fail_after(self.context.assembly.redis_timeout_s * 2):
                released = await self.store.release(token)
        except REDIS_TROUBLE as exc:
            log.warning("leader: could not give the lease up (%s); it expires on its own", exc)
            return
        if released and token is not None:
            log.info("leader: gave the lease up (fencing token %d)", token)


@dataclass(frozen=True)
class HoldSeen:
    """Another process's hold on this instance id, as one read saw it: when it expires, on
    this process's monotonic clock, somewhere between two bounds (Redis measured its time
    to live between sending the read and receiving the answer). None: it never expires."""

    owner: str
    expires_after: float | None
    expires_before: float | None

    @classmethod
    def of(cls, reply: IdentityTaken, sent_at: float, received_at: float) -> HoldSeen:
        if reply.remaining_s is None:
            return cls(reply.owner, None, None)
        return cls(reply.owner, sent_at + reply.remaining_s, received_at + reply.remaining_s)


def renewed(before: HoldSeen, after: HoldSeen) -> bool:
    """Whether the other process showed it is alive between two reads: its hold now expires
    later than it could have before (only a renewal moves an expiry later), or another
    process took the id meanwhile. A hold that never expires (set by hand) proves nothing."""
    if after.owner != before.owner:
        return True
    if after.expires_after is None or before.expires_before is None:
        return False
    return after.expires_after > before.expires_before + PTTL_RESOLUTION_S

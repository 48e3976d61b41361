"""Keeping the HA lease: claim it at start, renew it every third of lease_ttl, follow the
holder while another instance leads (asking again the moment its lease would expire), give
it up on a clean stop. Every change of role is logged, audited and counted; taking over
starts with a reconcile pass (what the old leader latched) and then the actions this
instance held back as a follower that nobody has taken yet.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

import anyio

from supervisor.daemon.context import REDIS_TROUBLE, Context
from supervisor.ha.leadership import Leadership, Role
from supervisor.ha.lease import Granted, HeldElsewhere, LeaseStore
from supervisor.publish.audit import AuditEvent, AuditKind, AuditOutcome
from supervisor.text import safe_line

log = logging.getLogger("supervisor")

FOLLOWER_POLL_MIN_S = 0.05  # asks again no sooner than this, whatever the holder's TTL says
EXPIRY_SLACK_S = 0.01  # asks this long after the holder's lease would have expired


class LeaseKeeper:
    def __init__(
        self,
        context: Context,
        store: LeaseStore,
        take_over: Callable[[], Coroutine[Any, Any, None]],
    ) -> None:
        self.context = context
        self.store = store
        self.take_over = take_over
        self.monotonic = context.monotonic
        self.highest_seen = 0  # the highest fencing token seen: a new one must be above it
        self._next_in_s = 0.0

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

    async def claim(self) -> None:
        """Renew or acquire once; learn who leads; act on a change of role."""
        leadership = self.leadership
        third_s = leadership.lease_ttl_s / 3
        sent_at = self.monotonic()
        try:
            with anyio.fail_after(min(self.context.assembly.redis_timeout_s * 2, third_s)):
                reply = await self.store.claim(leadership.token, self.highest_seen)
        except REDIS_TROUBLE as exc:
            self.context.note_problem("redis", exc)
            if leadership.unreachable(self.monotonic()):
                self._lost("Redis cannot be reached and the lease may have expired")
            self._next_in_s = third_s
            self.context.observe_leadership()
            return
        if isinstance(reply, Granted):
            self._granted(reply.token, sent_at)
            self._next_in_s = third_s
        else:
            self._held_elsewhere(reply)
            self._next_in_s = max(
                FOLLOWER_POLL_MIN_S, min(third_s, reply.remaining_s + EXPIRY_SLACK_S)
            )
        self.context.observe_leadership()

    def _granted(self, token: int, sent_at: float) -> None:
        leadership = self.leadership
        previous = leadership.token
        self.highest_seen = max(self.highest_seen, token)
        if not leadership.won(token, sent_at):
            return
        if previous is not None:  # it led: its lease lapsed (a pause), or was taken over
            log.warning("leader: the lease with fencing token %d had lapsed", previous)
        log.warning("leader: this instance leads now (fencing token %d)", token)
        self.context.audit(
            AuditEvent.new(
                AuditKind.LEADERSHIP,
                outcome=AuditOutcome.ACQUIRED,
                reason=f"took the lease (fencing token {token})",
            )
        )
        self.context.spawn(self.take_over())

    def _held_elsewhere(self, reply: HeldElsewhere) -> None:
        if reply.token is not None:
            self.highest_seen = max(self.highest_seen, reply.token)
        leadership = self.leadership
        known = leadership.role is Role.FOLLOWER and leadership.leader == reply.holder
        if leadership.lost(reply.holder, reply.token):
            self._lost(f"{safe_line(reply.holder, 80)} holds the lease")
        elif not known:
            log.info(
                "follower: %s leads (fencing token %s); this instance evaluates and publishes,"
                " and leaves the actions to it",
                safe_line(reply.holder, 80),
                reply.token if reply.token is not None else "?",
            )

    def _lost(self, why: str) -> None:
        log.error("leader: this instance no longer leads: %s; it acts no more", why)
        self.context.audit(
            AuditEvent.new(AuditKind.LEADERSHIP, outcome=AuditOutcome.LOST, reason=why)
        )

    async def release(self) -> None:
        """On a clean stop: give the lease up so that a follower takes over at once."""
        token = self.leadership.token
        if token is None or not self.leadership.leads(self.monotonic()):
            return
        try:
            with anyio.fail_after(self.context.assembly.redis_timeout_s * 2):
                released = await self.store.release(token)
        except REDIS_TROUBLE as exc:
            log.warning("leader: could not give the lease up (%s); it expires on its own", exc)
            return
        if released:
            log.info("leader: gave the lease up (fencing token %d)", token)

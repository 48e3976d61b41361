"""The bookkeeping of engagements: the latches held, and the actions ordered and not yet
confirmed.

A latch is held in memory (runtime.engaged), in state_dir and in Redis; only a reset removes
one. An order counts in the trading state from the moment it is made (runtime.ordered) and is
written down before its actuator is called: in state_dir, and with [ha] on in Redis for a new
leader (supervisor/pending.py, ha/orders.py). Acting orders and confirms; the Reconciler
restores, latches what it finds engaged elsewhere, and drops what a reset voided. Neither
touches the files or the keys itself. A write that fails never stops protection: a full disk
is said (state_dir, DEGRADED) and written again later, Redis is written again by the next
reconcile pass. The files are written by a worker thread (supervisor/snapshot_file.py): a
disk that takes seconds to fsync holds neither the loop nor, beyond a budget, an action.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from pathlib import Path

import anyio

from supervisor.actuators.base import Actuator
from supervisor.daemon.context import REDIS_TROUBLE, Context
from supervisor.daemon.display import Display
from supervisor.daemon.problems import Source
from supervisor.daemon.publishing import Publishing
from supervisor.daemon.runtime import Ordered
from supervisor.latch import Latch, file_content, without_reset
from supervisor.model import Decision
from supervisor.pending import Order, order
from supervisor.snapshot_file import SnapshotFile

log = logging.getLogger("supervisor")

SHARE_ORDER_BUDGET_S = 0.05  # how long an action waits for its order to reach Redis (HA)
# How long an action waits for its order to reach the disk, side by side with Redis: an
# fsync takes a millisecond, or seconds on a disk another process is flushing, and a busy
# loop delays the writer's thread too (0.25 s held trips in CI by as much, under load); the
# action matters more than its record.
ORDER_ON_DISK_BUDGET_S = 0.05
# How long the shutdown waits for the state files: a disk that does not answer must not hold
# the exit past systemd's stop timeout (Redis holds the latches too).
STATE_FILES_FLUSH_S = 5.0


def latch_reason(actuator: str, decision: Decision) -> str:
    return f"{actuator} tripped by {decision.source} — {decision.reason}"


class Engagements:
    def __init__(self, context: Context, display: Display, publishing: Publishing) -> None:
        self.context = context
        self.display = display
        self.publishing = publishing
        assembly = context.assembly  # a reload keeps both stores (daemon/assembly.py)
        self.latch_file = SnapshotFile(assembly.latches.path, self._cannot_write)
        self.pending_file = SnapshotFile(assembly.pending.path, self._cannot_write)

    # Orders: made, failing, confirmed or voided.

    def order(self, decision: Decision, actuator: Actuator) -> None:
        """The decision's level counts from now (in state, STATUS and metrics), as ordered and
        not yet confirmed, until its actuator is latched or a reset voids the order."""
        runtime = self.context.runtime
        if actuator.name in runtime.engaged:
            return
        previous = runtime.ordered.get(actuator.name)
        failing = previous.failing if previous is not None else ""
        mine = replace(decision, actuators=(actuator.name,))
        runtime.ordered[actuator.name] = Ordered(actuator.level, mine, failing)
        # Shown (STATUS, metrics, {ns}:state) once the request is on its way: see Acting.start.

    def ordered_decision(self, name: str) -> Decision | None:
        """The decision whose action on `name` is not yet confirmed, if any."""
        ordered = self.context.runtime.ordered.get(name)
        return ordered.decision if ordered is not None else None

    def failing(self, name: str, why: str) -> bool:
        """An attempt at the order on `name` failed (`why`, one line); True when it is the
        first (or there is no order: it is news either way)."""
        runtime = self.context.runtime
        ordered = runtime.ordered.get(name)
        first = ordered is None or not ordered.failing
        if ordered is not None:
            ordered.failing = why
        runtime.problems.note(Source.ACTION, "failing", name)
        return first

    def confirm(self, actuator: Actuator, reason: str, watchdog: str) -> bool:
        """The action on `actuator` succeeded: no longer failing, latched (for `watchdog`,
        with `reason`), its order done. True when that changed the state."""
        name = actuator.name
        self.context.runtime.problems.clear(Source.ACTION, name)
        latched = self.latch(actuator, reason, watchdog)
        confirmed = self.context.runtime.ordered.pop(name, None) is not None
        self.pending_done(name)
        return latched or confirmed

    def void_order(self, name: str) -> None:
        """A manual reset voided the order on `name` (if any)."""
        self.context.runtime.ordered.pop(name, None)
        self.context.runtime.problems.clear(Source.ACTION, name)

    async def write_order(self, name: str, decision: Decision) -> None:
        """Write the order down before acting on it: in state_dir, and with [ha] on in Redis
        for a new leader. Neither may stop the action: a full disk is said; the disk gets
        ORDER_ON_DISK_BUDGET_S and Redis SHARE_ORDER_BUDGET_S (one round trip is ~0.2 ms),
        side by side, before the action goes out anyway."""
        context = self.context
        loop = asyncio.get_running_loop()
        started = loop.time()
        resets = context.runtime.resets
        ordered = order(name, decision, resets.get(name, 0) if resets is not None else None)
        shared = context.assembly.orders
        sharing = None
        if shared is not None:
            sharing = loop.create_task(self.publishing.publish(shared.put(ordered)))
            context.tasks.track(sharing)
        context.assembly.pending.add(ordered)
        on_disk = self.pending_file.put(context.assembly.pending.content())
        if sharing is not None:
            await asyncio.wait({sharing}, timeout=SHARE_ORDER_BUDGET_S)
        left_s = ORDER_ON_DISK_BUDGET_S - (loop.time() - started)
        if not await self.pending_file.written(on_disk, left_s):
            log.warning(
                "actuator=%s: its order is not on disk after %.2fs (a slow disk or host):"
                " acting anyway",
                name,
                ORDER_ON_DISK_BUDGET_S,
            )

    def pending_done(self, name: str) -> None:
        """Forget the orders for `name` once it is engaged (or gone from the config)."""
        pending = self.context.assembly.pending
        if pending.done(name):
            self.pending_file.put(pending.content())

    def void_pending(self, resets: dict[str, int]) -> list[Order]:
        """Forget the orders that a later manual reset voided; return them."""
        pending = self.context.assembly.pending
        voided = pending.void(resets)
        if voided:
            self.pending_file.put(pending.content())
        return voided

    # Latches: held, written, released by a reset.

    def latch(self, actuator: Actuator, reason: str, watchdog: str = "") -> bool:
        """Record and persist an engagement; True if it is news."""
        if actuator.name in self.context.runtime.engaged:
            return False
        self.keep(actuator.name, Latch(actuator.level, reason, self.context.clock(), watchdog))
        return True

    def keep(self, name: str, latch: Latch) -> None:
        """Hold `latch` for actuator `name`: in memory, in state_dir and in Redis."""
        context = self.context
        context.runtime.engaged[name] = latch
        self.save_file()
        self.display.refresh()
        context.tasks.spawn(self.write_to_redis(name, latch))

    def take_number(self, name: str, published: Latch) -> None:
        """A latch held here without a number yet (engaged while Redis was away) takes the
        one Redis holds for the same actuator, as at a restart (latch.merge): no reset came
        after that one. Unnumbered, it would outlive the next reset and be written back
        above it (nemesis seed 30: a deposed leader's breaker engaged again after a reset)."""
        held = self.context.runtime.engaged.get(name)
        if held is None or held.seq is not None or published.seq is None:
            return
        self.context.runtime.engaged[name] = replace(held, seq=published.seq)
        self.save_file()

    def drop_reset(self, resets: dict[str, int]) -> list[str]:
        """Clear the latches a later manual reset released; return their names."""
        runtime = self.context.runtime
        kept = without_reset(runtime.engaged, resets)
        if len(kept) == len(runtime.engaged):
            return []
        dropped = sorted(set(runtime.engaged) - set(kept))
        for name in dropped:
            log.warning("actuator=%s released by a manual reset: its latch is cleared", name)
        runtime.engaged = kept
        self.save_file()
        return dropped

    def drop(self, name: str) -> None:
        """Clear the latch of `name` (released by the daemon itself: auto_reset_after)."""
        del self.context.runtime.engaged[name]
        self.save_file()

    async def write_to_redis(self, name: str, latch: Latch) -> None:
        """Write a latch to Redis; once it has its number, keep that in memory and the file."""
        context = self.context
        store = context.assembly.latches
        try:
            with anyio.fail_after(context.assembly.redis_timeout_s * 2):
                written = await store.save_redis(name, latch)
        except REDIS_TROUBLE as exc:
            self.publishing.redis_failed(exc)  # written again by the next reconcile pass
            return
        if written != latch and context.runtime.engaged.get(name) == latch:
            context.runtime.engaged[name] = written
            self.save_file()
        if context.assembly.orders is not None:  # latched in Redis: the order is done
            await self.publishing.publish(context.assembly.orders.done(name))

    # state_dir

    def save_file(self) -> None:
        """Persist what is engaged in state_dir (a worker thread writes it); a failure is
        said, never raised (disk full: protection goes on, health says DEGRADED)."""
        self.latch_file.put(file_content(self.context.runtime.engaged))

    def persist(self) -> None:
        """Write the latches and pending orders held in memory to state_dir again: changes
        made while it could not be written (a full disk) must not wait for the next one, or
        a restart that also finds Redis empty would re-arm trading."""
        self.save_file()
        self.pending_file.put(self.context.assembly.pending.content())

    async def flush(self, timeout_s: float = STATE_FILES_FLUSH_S) -> None:
        """Wait until both files hold what was handed over (the shutdown's last write), at
        most `timeout_s`; the writes themselves are never cancelled."""
        try:
            async with asyncio.timeout(timeout_s):
                await self.latch_file.flush()
                await self.pending_file.flush()
        except TimeoutError:
            log.error(
                "state_dir: %s or %s not written within %.1fs (the disk does not answer);"
                " Redis holds the latches",
                self.latch_file.path,
                self.pending_file.path,
                timeout_s,
            )

    def _cannot_write(self, path: Path, exc: OSError) -> None:
        log.error("cannot write %s: %s", path, exc)
        problem = f"cannot write {path}: {exc.strerror}"
        self.context.runtime.problems.note(Source.STATE_DIR, problem)

"""Publishing to the supervisor's own Redis: the state hash, the heartbeat, this instance's
record, each watchdog's run. Best effort: an outage is the "redis" problem (health
DEGRADED), never a stalled loop. Writes made in the background keep only the newest one
waiting per key, so a slow Redis never holds up a watchdog cycle; a key of the daemon's own
that holds the wrong type (WRONGTYPE) is set aside, to be written again."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import anyio

from supervisor import __version__
from supervisor.daemon.context import REDIS_TROUBLE, Context
from supervisor.daemon.display import Display
from supervisor.daemon.problems import Source
from supervisor.errors import first_line
from supervisor.ha.instances import InstanceRecord, publish_instance, verdicts_json
from supervisor.ha.leadership import Role
from supervisor.keys import (
    engaged_key,
    heartbeat_key,
    identity_key,
    instance_key,
    instances_key,
    lease_keys,
    order_key,
    reset_key,
    seq_key,
    state_key,
    watchdog_key,
)
from supervisor.stored_redis import is_wrong_type, repair_types

log = logging.getLogger("supervisor")


class Publishing:
    def __init__(self, context: Context, display: Display) -> None:
        self.context = context
        self.display = display
        self._waiting: dict[str, Callable[[], Awaitable[None]]] = {}  # newest write per key
        self._writing: set[str] = set()  # keys with a writer task
        self._repairing = False  # setting aside keys of the wrong type

    async def publish(self, write: Awaitable[None]) -> None:
        """Publishing to Redis is best effort: an outage degrades health, never the loop."""
        try:
            with anyio.fail_after(self.context.assembly.redis_timeout_s * 2):
                await write
        except REDIS_TROUBLE as exc:
            self.redis_failed(exc)
            return
        if self.context.runtime.problems.clear(Source.REDIS):
            log.warning("redis: reachable again")

    def publish_soon(self, key: str, write: Callable[[], Awaitable[None]]) -> None:
        """Publish in the background, newest wins: while a write for `key` is in flight, only
        the newest waiting one is kept. A slow Redis then never holds up a watchdog cycle."""
        self._waiting[key] = write
        if key not in self._writing:
            self._writing.add(key)
            self.context.tasks.spawn(self._drain(key))

    async def _drain(self, key: str) -> None:
        try:
            while (write := self._waiting.pop(key, None)) is not None:
                await self.publish(write())
        finally:
            self._writing.discard(key)

    def redis_failed(self, exc: BaseException) -> None:
        """Say once that the supervisor's own Redis is in trouble. A key of its own that
        holds the wrong Redis type (WRONGTYPE) is set aside, to be written again."""
        self.context.runtime.problems.failed(Source.REDIS, exc)
        if is_wrong_type(exc) and not self._repairing:
            self._repairing = True
            self.context.tasks.spawn(self._repair_types())

    async def _repair_types(self) -> None:
        assembly = self.context.assembly
        try:
            with anyio.fail_after(assembly.redis_timeout_s * 2):
                await repair_types(
                    assembly.clients.redis, assembly.settings.supervisor.namespace, self.own_keys()
                )
        except REDIS_TROUBLE as exc:
            log.warning("redis: cannot set keys of the wrong type aside: %s", first_line(exc))
        finally:
            self._repairing = False

    def own_keys(self) -> dict[str, str]:
        """The daemon's own Redis keys and the type each must have."""
        assembly = self.context.assembly
        ns = assembly.settings.supervisor.namespace
        keys = {
            state_key(ns): "hash",
            heartbeat_key(ns): "string",
            engaged_key(ns): "hash",
            reset_key(ns): "hash",
            seq_key(ns): "string",
        }
        keys.update({watchdog_key(ns, name): "hash" for name in assembly.watchdogs})
        if self.context.leadership.enabled:
            keys.update(dict.fromkeys(lease_keys(ns), "string"))
            keys[identity_key(ns, assembly.instance_id)] = "string"
            keys.update({instances_key(ns): "set", instance_key(ns, assembly.instance_id): "hash"})
            keys.update({order_key(ns, name): "string" for name in assembly.actuators})
        return keys

    async def publish_state(self) -> None:
        """The heartbeat always, and with [ha] on this instance's record; the state hash only
        from the instance that acts (a follower's view may lag the leader's trip by a second)."""
        context = self.context
        summary = self.display.refresh()
        now = context.clock()
        leadership = context.leadership
        snapshot = context.runtime.snapshot(
            summary, context.assembly.instance_id, leadership.leader or "", now
        )
        publisher = context.assembly.publisher
        await self.publish(publisher.publish_state(snapshot, whole=context.leads()))
        # `status` lists the instances of an HA group; a duplicate would overwrite the record
        # of the process that holds its instance id
        if leadership.enabled and leadership.role is not Role.DUPLICATE:
            record = self.record(now)
            await self.publish(publish_instance(publisher.redis, publisher.namespace, record))

    def record(self, now: float) -> InstanceRecord:
        """This instance as `status` lists the members of an HA group."""
        context = self.context
        leadership, summary = context.leadership, context.runtime.summary
        lease_age_s = leadership.lease_age_s(context.monotonic())
        statuses = {name: state.status.name for name, state in context.runtime.policy.items()}
        return InstanceRecord(
            instance=context.assembly.instance_id,
            role=leadership.role_name(context.monotonic()),
            leader=leadership.leader or "",
            fencing_token="" if leadership.token is None else str(leadership.token),
            lease_age_s="" if lease_age_s is None else f"{lease_age_s:.1f}",
            trading_state=summary.trading_state.name if summary else "",
            health=summary.health.name if summary else "",
            verdicts=verdicts_json(statuses),
            version=__version__,
            updated_at=f"{now:.3f}",
        )

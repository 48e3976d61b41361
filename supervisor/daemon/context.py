"""What every part of the daemon shares, and the few services all of them use.

The assembly (everything built from the config) is replaced whole by a reload; the runtime
(what was learned) survives it. Work started in the background goes through `spawn`, so the
two-phase shutdown can wait for it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import replace
from typing import Any

import anyio
import httpx
from redis.exceptions import RedisError

from supervisor import __version__
from supervisor.daemon.assembly import Assembly
from supervisor.daemon.runtime import Runtime
from supervisor.errors import SupervisorError, first_line
from supervisor.global_state import GlobalState
from supervisor.ha.instances import InstanceRecord, publish_instance, verdicts_json
from supervisor.ha.leadership import Leadership, Role
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
from supervisor.publish.audit import AuditEvent
from supervisor.publish.metrics import Metrics
from supervisor.publish.systemd import Notifier
from supervisor.recorder.writer import start_recorder
from supervisor.stored_redis import is_wrong_type, repair_types
from supervisor.text import safe_line

log = logging.getLogger("supervisor")

# What talking to Redis may raise when Redis, or the way to it, is in trouble. Anything else
# is a bug and is logged with its traceback.
REDIS_TROUBLE = (RedisError, OSError, TimeoutError)
# ...and what an actuator's store or endpoint may raise (ActuatorError is a SupervisorError).
ACTUATOR_TROUBLE = (*REDIS_TROUBLE, httpx.HTTPError, SupervisorError)


class Context:
    def __init__(
        self,
        assembly: Assembly,
        metrics: Metrics,
        notifier: Notifier,
        clock: Callable[[], float],
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.assembly = assembly
        self.metrics = metrics
        self.notifier = notifier
        self.clock = clock
        self.monotonic = monotonic  # the lease's clock: never stepped, never another host's
        self.started_at = clock()
        self.runtime = Runtime(trading_since=self.started_at)
        self.recorder = start_recorder(assembly.settings, metrics)
        ha = assembly.settings.ha
        self.leadership = Leadership(
            assembly.instance_id, ha.enabled, ha.lease_ttl_s, ha.act_without_lease
        )
        metrics.ha_enabled.set(1 if ha.enabled else 0)
        metrics.audit_postgres_enabled.set(0 if assembly.settings.postgres.dsn is None else 1)
        self.observe_leadership()
        self.in_flight: set[asyncio.Task[Any]] = set()
        self._waiting: dict[str, Callable[[], Awaitable[None]]] = {}  # newest write per key
        self._writing: set[str] = set()  # keys with a writer task
        self._repairing = False  # setting aside keys of the wrong type

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` as a task the two-phase shutdown waits for; a bug in it is logged."""
        self.track(asyncio.get_running_loop().create_task(work))

    def track(self, task: asyncio.Task[Any]) -> None:
        """Let the shutdown wait for `task`, and log it if a bug ends it."""
        self.in_flight.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self.in_flight.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("bug: background task failed", exc_info=task.exception())

    def leads(self) -> bool:
        """Holds a lease that cannot have expired yet (always, with [ha] off)."""
        return self.leadership.leads(self.monotonic())

    def may_act(self) -> bool:
        """May run automatic actions: it leads, or nobody can (act_without_lease)."""
        return self.leadership.may_act(self.monotonic())

    def audit(self, event: AuditEvent) -> None:
        """Record without blocking the caller; the trail keeps the order and never raises.
        The event carries this instance's fencing token while it leads."""
        if event.fencing_token is None and self.leadership.token is not None:
            event = replace(event, fencing_token=self.leadership.token)
        self.spawn(self.assembly.audit.record(event))

    def observe_leadership(self) -> None:
        """The lease as metrics; a lead that lapsed shows at once, not at the next claim."""
        leads = self.leads()
        self.metrics.is_leader.set(1 if leads else 0)
        token = self.leadership.token if leads else None
        self.metrics.fencing_token.set(token or 0)

    async def publish(self, write: Awaitable[None]) -> None:
        """Publishing to Redis is best effort: an outage degrades health, never the loop."""
        try:
            with anyio.fail_after(self.assembly.redis_timeout_s * 2):
                await write
        except REDIS_TROUBLE as exc:
            self.note_problem("redis", exc)
            return
        if self.runtime.problems.pop("redis", None) is not None:
            log.warning("redis: reachable again")

    def publish_soon(self, key: str, write: Callable[[], Awaitable[None]]) -> None:
        """Publish in the background, newest wins: while a write for `key` is in flight, only
        the newest waiting one is kept. A slow Redis then never holds up a watchdog cycle."""
        self._waiting[key] = write
        if key not in self._writing:
            self._writing.add(key)
            self.spawn(self._drain(key))

    async def _drain(self, key: str) -> None:
        try:
            while (write := self._waiting.pop(key, None)) is not None:
                await self.publish(write())
        finally:
            self._writing.discard(key)

    def note_problem(self, component: str, exc: BaseException) -> None:
        """Say once what is wrong with one of the supervisor's own dependencies. A key of
        its own that holds the wrong Redis type (WRONGTYPE) is set aside, to be written again."""
        detail = "timed out" if isinstance(exc, TimeoutError) else first_line(exc)
        if component not in self.runtime.problems:
            log.error("%s: %s (watchdogs that need it go UNKNOWN; retrying)", component, detail)
        self.runtime.problems[component] = detail
        if is_wrong_type(exc) and not self._repairing:
            self._repairing = True
            self.spawn(self._repair_types())

    async def _repair_types(self) -> None:
        try:
            redis = self.assembly.clients.redis
            with anyio.fail_after(self.assembly.redis_timeout_s * 2):
                await repair_types(
                    redis, self.assembly.settings.supervisor.namespace, self.own_keys()
                )
        except REDIS_TROUBLE as exc:
            log.warning("redis: cannot set keys of the wrong type aside: %s", first_line(exc))
        finally:
            self._repairing = False

    def own_keys(self) -> dict[str, str]:
        """The daemon's own Redis keys and the type each must have."""
        assembly = self.assembly
        ns = assembly.settings.supervisor.namespace
        keys = {
            state_key(ns): "hash",
            heartbeat_key(ns): "string",
            engaged_key(ns): "hash",
            reset_key(ns): "hash",
            seq_key(ns): "string",
        }
        keys.update({watchdog_key(ns, name): "hash" for name in assembly.watchdogs})
        if self.leadership.enabled:
            keys.update(dict.fromkeys(lease_keys(ns), "string"))
            keys[identity_key(ns, assembly.instance_id)] = "string"
            keys.update({instances_key(ns): "set", instance_key(ns, assembly.instance_id): "hash"})
            keys.update({order_key(ns, name): "string" for name in assembly.actuators})
        return keys

    def refresh(self) -> GlobalState:
        """Derive the global answer again and show it: metrics, STATUS, a log line on change."""
        runtime = self.runtime
        summary = runtime.global_state(self.assembly.watchdogs)
        previous = runtime.summary
        if previous is None or previous.trading_state != summary.trading_state:
            runtime.trading_since = self.clock()
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
        self.metrics.observe_state(
            summary.trading_state,
            summary.health,
            breaker=runtime.breaker_tripped,
            kill=runtime.kill_engaged,
        )
        failing = {name: ordered.failing for name, ordered in runtime.ordered.items()}
        self.metrics.observe_actions(failing, runtime.releasing)
        self.metrics.observe_latches(runtime.engaged)
        self.notifier.status(self.role_prefix() + summary.status_line())
        return summary

    def role_prefix(self) -> str:
        """`systemctl status` says which instance acts: "[leader 7] ", "[follower of a] "."""
        leadership = self.leadership
        if leadership.role is Role.STANDALONE:
            return ""
        if self.leads():
            return f"[leader {leadership.token}] "
        if leadership.role is Role.FOLLOWER:
            return f"[follower of {safe_line(leadership.leader or '?', 40)}] "
        if leadership.role is Role.NO_LEASE:
            acts = "acting without it" if leadership.act_without_lease else "not acting"
            return f"[no lease: {acts}] "
        return f"[{leadership.role.value}] "

    async def publish_state(self) -> None:
        """The heartbeat always, and with [ha] on this instance's record; the state hash only
        from the instance that acts (a follower's view may lag the leader's trip by a second)."""
        summary = self.refresh()
        now = self.clock()
        leader = self.leadership.leader or ""
        snapshot = self.runtime.snapshot(summary, self.assembly.instance_id, leader, now)
        publisher = self.assembly.publisher
        await self.publish(publisher.publish_state(snapshot, whole=self.leads()))
        # `status` lists the instances of an HA group; a duplicate would overwrite the record
        # of the process that holds its instance id
        if self.leadership.enabled and self.leadership.role is not Role.DUPLICATE:
            record = self.record(now)
            await self.publish(publish_instance(publisher.redis, publisher.namespace, record))

    def record(self, now: float) -> InstanceRecord:
        leadership, summary = self.leadership, self.runtime.summary
        lease_age_s = leadership.lease_age_s(self.monotonic())
        statuses = {name: state.status.name for name, state in self.runtime.policy.items()}
        return InstanceRecord(
            instance=self.assembly.instance_id,
            role=leadership.role_name(self.monotonic()),
            leader=leadership.leader or "",
            fencing_token="" if leadership.token is None else str(leadership.token),
            lease_age_s="" if lease_age_s is None else f"{lease_age_s:.1f}",
            trading_state=summary.trading_state.name if summary else "",
            health=summary.health.name if summary else "",
            verdicts=verdicts_json(statuses),
            version=__version__,
            updated_at=f"{now:.3f}",
        )

"""Manual control: `trip`, `kill` and `reset`, as an operator runs them from the CLI.

`trip` engages every reduce_only actuator, `kill` every halted/flatten one; both latch (the
daemon picks them up from `{ns}:engaged`). `reset` is the only way to release: a reason of
20+ characters, at most one reset a minute across every instance (`SET NX EX` on a global
key), refused while a watchdog still breaches unless forced. A reset writes its marker to
`{ns}:reset` before releasing anything, so a running daemon never mistakes it for a breaker
that was lost (which it would re-engage).

The result lines (printed, and kept in the audit event) hold outside text, an exception's or
a venue's: each is one safe line (supervisor/text.py), so the lines are exactly one per
actuator.
"""

from __future__ import annotations

import asyncio
import getpass
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from redis.asyncio import Redis
from redis.exceptions import RedisError

from supervisor.actuators.base import ActionContext, Actuator
from supervisor.config.settings import Settings
from supervisor.errors import SupervisorError, first_line
from supervisor.keys import aside_key, reset_lock_key, watchdog_key
from supervisor.latch import Latch, LatchStore
from supervisor.model import Decision, Origin, Status, TradingState
from supervisor.protection import Protection, build_protection
from supervisor.publish.audit import AuditEvent, AuditKind, AuditOutcome, AuditTrail
from supervisor.sources.clients import Clients, close_clients, open_clients
from supervisor.stored import SIGHTINGS
from supervisor.stored_redis import TTL_MS
from supervisor.text import safe_line

# KEYS: the lock, where it goes. ARGV: ttl ms of the copy. Moves the lock only if it has no expiry.
MOVE_NO_EXPIRY = """
if redis.call('PTTL', KEYS[1]) == -1 then
  redis.call('RENAME', KEYS[1], KEYS[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[1])
  return 1
end
return 0
"""

# What Redis being away raises: a manual command says so and exits 1, never a traceback.
REDIS_TROUBLE = (RedisError, OSError, TimeoutError)
MIN_REASON_LENGTH = 20
RESET_INTERVAL_S = 60
# A reset waits this long for `{ns}:seq` when Redis lost it: every daemon puts it back on its
# next housekeeping pass (every second), above every latch it holds.
COUNTER_BACK_S = 3.0
Group = Literal["breaker", "kill"]
# What a manual event's outcome says: the command run (for a reset: and whether it was forced).
ENGAGE_OUTCOMES: dict[Group, AuditOutcome] = {
    "breaker": AuditOutcome.ENGAGE_BREAKER,
    "kill": AuditOutcome.ENGAGE_KILL,
}
RESET_OUTCOMES: dict[tuple[Group, bool], AuditOutcome] = {
    ("breaker", False): AuditOutcome.RESET_BREAKER,
    ("kill", False): AuditOutcome.RESET_KILL,
    ("breaker", True): AuditOutcome.RESET_BREAKER_FORCED,
    ("kill", True): AuditOutcome.RESET_KILL_FORCED,
}


class Refused(SupervisorError, PermissionError):
    """A manual command was refused; the message says why."""


@dataclass(frozen=True)
class Done:
    message: str


def operator_name(explicit: str | None) -> str:
    """--operator, else the human behind sudo, else the login user."""
    return explicit or os.environ.get("SUDO_USER") or getpass.getuser()


def in_group(group: Group) -> Callable[[Actuator], bool]:
    if group == "breaker":
        return lambda a: a.level == TradingState.REDUCE_ONLY
    return lambda a: a.level >= TradingState.HALTED


def check_reason(reason: str) -> None:
    if len(reason.strip()) < MIN_REASON_LENGTH:
        raise Refused(f"the reason must have at least {MIN_REASON_LENGTH} characters")


async def engage(settings: Settings, group: Group, reason: str, operator: str) -> Done:
    check_reason(reason)
    clients = open_clients(
        settings.redis, settings.postgres, f"trading-supervisor-manual:{operator}"
    )
    try:
        protection = build_protection(settings, clients)
        targets = _targets(protection, group)
        now = time.time()
        why = f"manual {'trip' if group == 'breaker' else 'kill'} by {operator}: {reason}"
        severity = Status.BREACH if group == "breaker" else Status.CRITICAL
        actuators = tuple(a.name for a in targets)
        decision = Decision(
            "", severity, actuators, why, uuid.uuid4().hex, now, origin=Origin.MANUAL
        )
        context = ActionContext(f"{settings.supervisor.instance_id}/{operator}", now)
        results = await asyncio.gather(
            *(a.engage(decision, context) for a in targets), return_exceptions=True
        )
        store = LatchStore(
            settings.supervisor.state_dir, clients.redis, settings.supervisor.namespace
        )
        lines = []
        for actuator, result in zip(targets, results, strict=True):
            if isinstance(result, BaseException):
                lines.append(safe_line(f"{actuator.name}: FAILED: {first_line(result)}"))
                continue
            done = "engaged" if result.changed else "already engaged"
            lines.append(f"{actuator.name}: {done}{await _latched(store, actuator, why, now)}")
        await _record(settings, clients, ENGAGE_OUTCOMES[group], operator, reason, lines)
        if any(isinstance(result, BaseException) for result in results):
            raise Refused("\n".join(lines))
        return Done("\n".join(lines))
    finally:
        await close_clients(clients)


async def reset(settings: Settings, group: Group, reason: str, operator: str, force: bool) -> Done:
    check_reason(reason)
    ns = settings.supervisor.namespace
    clients = open_clients(
        settings.redis, settings.postgres, f"trading-supervisor-manual:{operator}"
    )
    redis = clients.redis
    try:
        protection = build_protection(settings, clients)
        targets = _targets(protection, group)
        store = LatchStore(settings.supervisor.state_dir, redis, ns)
        try:
            breaching = await _reset_allowed(settings, redis, operator, force)
            names = [a.name for a in targets]
            await store.record_reset(names, COUNTER_BACK_S)  # before anything is released
        except Refused:
            raise  # its own words (a PermissionError, so an OSError too: not Redis trouble)
        except REDIS_TROUBLE as exc:
            raise Refused(f"refused: Redis: {first_line(exc)}; nothing was released") from None
        context = ActionContext(f"{settings.supervisor.instance_id}/{operator}", time.time())
        lines = [await _release(a, context) for a in targets]
        command = RESET_OUTCOMES[group, bool(breaching)]
        await _record(settings, clients, command, operator, reason, lines)
        if any("FAILED" in line for line in lines):
            raise Refused("\n".join(lines))
        return Done("\n".join(lines))
    finally:
        await close_clients(clients)


async def _latched(store: LatchStore, actuator: Actuator, why: str, now: float) -> str:
    """Record the engagement for the daemon; "" when done, else what went wrong."""
    try:
        await store.save_redis(actuator.name, Latch(actuator.level, why, now))
    except REDIS_TROUBLE as exc:
        return f"; FAILED to latch it in Redis (the daemon will not know): {first_line(exc)}"
    return ""


async def _reset_allowed(settings: Settings, redis: Redis, operator: str, force: bool) -> list[str]:
    """The watchdogs still breaching; Refused when a reset may not happen now."""
    ns = settings.supervisor.namespace
    breaching = await _breaching_watchdogs(settings, redis)
    if breaching and not force:
        raise Refused(f"refused: still breaching: {', '.join(breaching)} (use --force to override)")
    lock = reset_lock_key(ns)
    taken = await redis.set(lock, operator, nx=True, ex=RESET_INTERVAL_S)
    if not taken and await _set_aside_lock(redis, ns, lock):  # no expiry: not a reset's
        taken = await redis.set(lock, operator, nx=True, ex=RESET_INTERVAL_S)
    if not taken:
        wait_s = await redis.ttl(lock)
        raise Refused(f"refused: at most one reset a minute (next in {max(wait_s, 1)}s)")
    return breaching


async def _set_aside_lock(redis: Redis, namespace: str, lock: str) -> bool:
    """A reset lock without expiry was never written by a reset (by hand, or of another type):
    it would refuse every reset forever. Set it aside; True if it was moved."""
    aside = aside_key(namespace, lock)
    moved = await redis.eval(MOVE_NO_EXPIRY, 2, lock, aside, TTL_MS)
    if moved:
        SIGHTINGS.report(
            "reset", lock, None, "a reset lock without expiry", f"set aside as {aside}"
        )
    return bool(moved)


async def _record(
    settings: Settings,
    clients: Clients,
    command: AuditOutcome,
    operator: str,
    reason: str,
    lines: list[str],
) -> None:
    """Audit a manual command: journal, `{ns}:events`, Postgres or the outbox."""
    trail = AuditTrail(
        settings.supervisor.state_dir,
        clients.redis,
        settings.postgres.dsn,
        settings.supervisor.namespace,
        settings.supervisor.instance_id,
    )
    event = AuditEvent.new(
        AuditKind.MANUAL, actor=operator, reason=reason, outcome=command, detail={"result": lines}
    )
    await trail.record(event)
    await trail.close()


def _targets(protection: Protection, group: Group) -> list[Actuator]:
    targets = [a for a in protection.actuators.values() if in_group(group)(a)]
    if not targets:
        raise Refused(f"no {group} actuator is configured")
    return targets


async def _breaching_watchdogs(settings: Settings, redis: Redis) -> list[str]:
    """The watchdogs whose published status is BREACH or CRITICAL, or cannot be read (a key
    of the wrong type): a reset then needs --force, as it would while they breach."""
    names = [w.name for w in settings.watchdogs]
    async with redis.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.hget(watchdog_key(settings.supervisor.namespace, name), "status")
        statuses = await pipe.execute(raise_on_error=False)
    failing = {Status.BREACH.name.encode(), Status.CRITICAL.name.encode()}
    breaching = []
    for name, status in zip(names, statuses, strict=True):
        if isinstance(status, OSError):
            raise status
        if isinstance(status, RedisError):
            breaching.append(f"{name} (its status cannot be read)")
        elif status in failing:
            breaching.append(name)
    return breaching


async def _release(actuator: Actuator, context: ActionContext) -> str:
    try:
        outcome = await actuator.disengage(context)
    except SupervisorError as exc:
        return safe_line(f"{actuator.name}: latch cleared; {exc} (release it at the venue)")
    except REDIS_TROUBLE as exc:
        return safe_line(f"{actuator.name}: latch cleared; release FAILED: {first_line(exc)}")
    return safe_line(f"{actuator.name}: released ({outcome.detail})")

"""Remedies: repairs a watchdog proposes to what it watches, applied by the daemon.

A watchdog only judges. When one finds something it knows how to repair (lock_ttl: a lock
with no expiry, an orphan that will never go away), it proposes a `Remedy`; the daemon applies
it (never in `check`, never in dry_run), logs it and writes it to the audit trail.
"""

from __future__ import annotations

import logging

from redis.asyncio import Redis
from redis.exceptions import RedisError

from supervisor.errors import first_line
from supervisor.model import Remedy

log = logging.getLogger(__name__)

RELEASE_ORPHAN = "release_orphan"
OWNER_SHOWN_CHARS = 12

# KEYS[1]: the lock. ARGV[1]: the owner value observed. Deletes only an unchanged orphan, so
# a lock legitimately re-acquired since the check is never touched.
RELEASE_SCRIPT = """
local kind = redis.call('TYPE', KEYS[1])['ok']
if kind == 'none' then return 'already gone' end
if kind ~= 'string' then return 'skipped: not a string' end
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 'skipped: owner changed' end
if redis.call('PTTL', KEYS[1]) ~= -1 then return 'skipped: expiry now set' end
redis.call('DEL', KEYS[1])
return 'released'
"""


def show_owner(owner: bytes) -> str:
    """Owner values may be tokens: shown shortened, never whole."""
    text = owner.decode("utf-8", "replace")
    shown = repr(text[:OWNER_SHOWN_CHARS])
    return shown + "…" if len(text) > OWNER_SHOWN_CHARS else shown


async def release_orphan(redis: Redis, key: str, owner: bytes) -> str:
    """Compare-and-delete an orphan lock; returns the outcome, never raises for Redis."""
    try:
        reply = await redis.eval(RELEASE_SCRIPT, 1, key, owner)
    except (RedisError, OSError) as exc:
        return f"failed: {first_line(exc)}"
    return reply.decode() if isinstance(reply, bytes) else str(reply)


async def apply(redis: Redis, remedy: Remedy) -> str:
    """Apply `remedy`; its outcome in a few words ("released", "skipped: owner changed"...)."""
    if remedy.action == RELEASE_ORPHAN:
        return await release_orphan(redis, remedy.subject, remedy.token)
    raise ValueError(f"unknown remedy {remedy.action!r}")  # a bug: every action is listed here


def describe(remedy: Remedy) -> str:
    return f"{remedy.action} key={remedy.subject} owner={show_owner(remedy.token)}"

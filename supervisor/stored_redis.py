"""Setting an unreadable Redis entry aside: `{ns}:unreadable:{rest of its key}` (a hash field
goes into the hash `{ns}:unreadable:{rest of the hash's key}`), kept SET_ASIDE_TTL_S for an
operator to look at. Each move is one Lua script that moves only what was read: a value
written meanwhile by a live writer stays where it is.

A key of the wrong Redis type (a list where a hash belongs) makes every command on it fail
with WRONGTYPE; `repair_types` moves such keys aside so that the daemon's next write makes
them right again.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from supervisor.keys import aside_key, store_of
from supervisor.stored import SET_ASIDE_TTL_S, SIGHTINGS
from supervisor.text import safe_line

log = logging.getLogger("supervisor")

TTL_MS = SET_ASIDE_TTL_S * 1000

# KEYS: the key, where it goes. ARGV: the value read, ttl ms.
MOVE_STRING = """
if redis.call('TYPE', KEYS[1]).ok == 'string' and redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('RENAME', KEYS[1], KEYS[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
  return 1
end
return 0
"""

# KEYS: the hash, the hash it goes to. ARGV: the field, the value read, ttl ms.
MOVE_FIELD = """
if redis.call('TYPE', KEYS[1]).ok == 'hash' and redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
  redis.call('HDEL', KEYS[1], ARGV[1])
  return 1
end
return 0
"""

# KEYS: the key, where it goes. ARGV: the type it must have, ttl ms. Returns the type moved.
MOVE_WRONG_TYPE = """
local found = redis.call('TYPE', KEYS[1]).ok
if found ~= 'none' and found ~= ARGV[1] then
  redis.call('RENAME', KEYS[1], KEYS[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
  return found
end
return false
"""


def is_wrong_type(exc: BaseException) -> bool:
    # A pipeline's error says "Command # 1 (HGETALL k) of pipeline caused error: ('WRONGTYPE..."
    return isinstance(exc, ResponseError) and "WRONGTYPE" in str(exc)


def is_not_a_counter(exc: BaseException) -> bool:
    """INCR refused: the value is not an integer, or it is at 2**63-1."""
    text = str(exc)
    return isinstance(exc, ResponseError) and (
        "not an integer" in text or "overflow" in text or "out of range" in text
    )


async def move_string(redis: Redis, namespace: str, key: str, raw: bytes | str) -> bool:
    moved = await redis.eval(MOVE_STRING, 2, key, aside_key(namespace, key), raw, TTL_MS)
    return bool(moved)


async def move_field(redis: Redis, namespace: str, key: str, field: bytes, raw: bytes) -> bool:
    aside = aside_key(namespace, key)
    return bool(await redis.eval(MOVE_FIELD, 2, key, aside, field, raw, TTL_MS))


async def repair_types(redis: Redis, namespace: str, expected: Mapping[str, str]) -> list[str]:
    """Move aside every key in `expected` (key -> Redis type) that holds another type; the
    keys moved. Said once each and counted under the store named by the key."""
    moved = []
    for key, wanted in expected.items():
        found = await redis.eval(MOVE_WRONG_TYPE, 2, key, aside_key(namespace, key), wanted, TTL_MS)
        if not found:
            continue
        found_type = found.decode() if isinstance(found, bytes) else str(found)
        moved.append(key)
        SIGHTINGS.report(
            store_of(namespace, key),
            key,
            None,
            f"a {found_type} where a {wanted} belongs",
            f"set aside as {aside_key(namespace, key)}",
        )
    return moved


async def set_aside_string(
    redis: Redis, namespace: str, key: str, raw: bytes | str, why: str, then: str
) -> None:
    """Say and count an unreadable string key (once), and move it aside (best effort:
    a failed move is tried again the next time it is read)."""
    SIGHTINGS.report(store_of(namespace, key), key, raw, why, then)
    try:
        await move_string(redis, namespace, key, raw)
    except RedisError as exc:
        log.warning("cannot set %s aside: %s", safe_line(key, 120), safe_line(str(exc), 120))


async def set_aside_field(
    redis: Redis, namespace: str, key: str, field: bytes, raw: bytes, why: str, then: str
) -> None:
    """Say and count an unreadable hash field (once), and move it aside (best effort)."""
    shown = f"{key} {field.decode('utf-8', 'replace')}"
    SIGHTINGS.report(store_of(namespace, key), shown, raw, why, then)
    try:
        await move_field(redis, namespace, key, field, raw)
    except RedisError as exc:
        log.warning("cannot set %s aside: %s", safe_line(shown, 120), safe_line(str(exc), 120))

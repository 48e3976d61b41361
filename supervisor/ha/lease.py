"""The leader lease in Redis: `{ns}:leader` holds the leader's instance id, `{ns}:leader:token`
its fencing token (both expire together after lease_ttl), `{ns}:leader:fencing` the counter
every acquisition INCRs. Each operation is one Lua script, so a claim never sets the lease
without a new token, and a renewal extends only the caller's own lease (compare-and-extend).

A token never goes backward, even when Redis lost the counter (a FLUSHALL, a failover to a
replica that missed the last INCR): the claimant sends the highest token it has seen, and a
counter at or below it is moved past it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from supervisor.stored import SIGHTINGS
from supervisor.stored_redis import TTL_MS, aside_key, is_wrong_type, repair_types

log = logging.getLogger("supervisor")

# KEYS: leader, token, fencing counter, where a counter INCR refuses goes. ARGV: instance, ttl
# ms, the caller's token ("" if none), the highest token the caller has seen, ttl ms of a
# value set aside.
# Returns {1, token, recovered} when the caller holds the lease now (recovered: 1 if the
# counter had to be moved past the highest token known), else {0, holder, token, pttl ms}.
CLAIM = """
local holder = redis.call('GET', KEYS[1])
local held = redis.call('GET', KEYS[2])
if holder == ARGV[1] and ARGV[3] ~= '' and held == ARGV[3] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
  return {1, ARGV[3], 0}
end
if holder == false or holder == ARGV[1] then
  local floor = tonumber(ARGV[4])
  if held and string.match(held, '^%d+$') and string.len(held) < 16 then
    floor = math.max(floor, tonumber(held))
  end
  local token = redis.pcall('INCR', KEYS[3])
  local recovered = 0
  if type(token) == 'table' then
    recovered = 1
    if redis.call('TYPE', KEYS[3]).ok == 'string' then
      redis.call('SET', KEYS[4], redis.call('GET', KEYS[3]), 'PX', ARGV[5])
    else
      redis.call('RENAME', KEYS[3], KEYS[4])
      redis.call('PEXPIRE', KEYS[4], ARGV[5])
    end
    token = floor + 1
    redis.call('SET', KEYS[3], token)
  elseif token <= floor then
    token = floor + 1
    redis.call('SET', KEYS[3], token)
  end
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  redis.call('SET', KEYS[2], token, 'PX', ARGV[2])
  return {1, tostring(token), recovered}
end
return {0, holder, held or '', redis.call('PTTL', KEYS[1])}
"""

# KEYS: leader, token. ARGV: instance, token. Gives the lease up if the caller still holds it.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] and redis.call('GET', KEYS[2]) == ARGV[2] then
  return redis.call('DEL', KEYS[1], KEYS[2])
end
return 0
"""


def leader_key(namespace: str) -> str:
    return f"{namespace}:leader"


def token_key(namespace: str) -> str:
    return f"{namespace}:leader:token"


def fencing_key(namespace: str) -> str:
    return f"{namespace}:leader:fencing"


def lease_keys(namespace: str) -> list[str]:
    return [leader_key(namespace), token_key(namespace), fencing_key(namespace)]


@dataclass(frozen=True)
class Granted:
    token: int


@dataclass(frozen=True)
class HeldElsewhere:
    holder: str  # "" when nobody holds it (cannot happen after a claim, kept for reads)
    token: int | None  # None if the token key holds no number (written by hand)
    remaining_s: float  # how long the holder's lease has left, by Redis


class LeaseStore:
    def __init__(self, redis: Redis, namespace: str, instance: str, ttl_s: float) -> None:
        self.instance = instance
        self.ttl_ms = int(ttl_s * 1000)
        self.keys = lease_keys(namespace)
        self.namespace = namespace
        self._redis = redis
        self.aside = aside_key(namespace, fencing_key(namespace))
        self._claim = redis.register_script(CLAIM)
        self._release = redis.register_script(RELEASE)

    async def claim(self, token: int | None, highest_seen: int) -> Granted | HeldElsewhere:
        """Renew this instance's lease (`token`), or acquire it if nobody holds it."""
        args: list[str | int] = [
            self.instance,
            self.ttl_ms,
            "" if token is None else token,
            highest_seen,
            TTL_MS,
        ]
        try:
            reply = await self._claim(keys=[*self.keys, self.aside], args=args)
        except ResponseError as exc:
            if not is_wrong_type(exc):
                raise
            await repair_types(self._redis, self.namespace, dict.fromkeys(self.keys, "string"))
            reply = await self._claim(keys=[*self.keys, self.aside], args=args)
        if int(reply[0]) == 1:
            if int(reply[2]) == 1:
                self._recovered(int(reply[1]), highest_seen)
            return Granted(int(reply[1]))
        holder, held, pttl_ms = reply[1:4]
        return HeldElsewhere(_text(holder), _token(held), max(0, int(pttl_ms)) / 1000)

    def _recovered(self, token: int, highest_seen: int) -> None:
        counter = self.keys[2]
        why = "INCR refused it (not an integer, or at 2**63-1)"
        then = f"moved past the highest token known ({highest_seen}) to {token}"
        SIGHTINGS.report("leader", counter, str(token), why, f"{then}; set aside as {self.aside}")
        log.warning("%s could not be incremented: recovered, %s", counter, then)

    async def release(self, token: int) -> bool:
        """Give the lease up (a clean stop): the follower takes over at once."""
        return bool(await self._release(keys=self.keys[:2], args=[self.instance, token]))


def _text(raw: bytes | str) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


def _token(raw: bytes | str) -> int | None:
    """A fencing token is a decimal integer (INCR's); anything else was not written by us."""
    text = _text(raw)
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 18 else None

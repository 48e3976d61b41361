"""The leader lease in Redis: `{ns}:leader` holds the leader's instance id, `{ns}:leader:token`
its fencing token (both expire together after lease_ttl), `{ns}:leader:fencing` the counter
every acquisition INCRs. Each operation is one Lua script, so a claim never sets the lease
without a new token, and a renewal extends only the caller's own lease (compare-and-extend).

A token never goes backward, even when Redis lost the counter (a FLUSHALL, a failover to a
replica that missed the last INCR): the claimant sends the highest token it has seen, and a
counter at or below it is moved past it.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

# KEYS: leader, token, fencing counter. ARGV: instance, ttl ms, the caller's token ("" if
# none), the highest token the caller has seen.
# Returns {1, token} when the caller holds the lease now, else {0, holder, token, pttl ms}.
CLAIM = """
local holder = redis.call('GET', KEYS[1])
local held = redis.call('GET', KEYS[2])
if holder == ARGV[1] and ARGV[3] ~= '' and held == ARGV[3] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
  return {1, ARGV[3]}
end
if holder == false or holder == ARGV[1] then
  local token = redis.call('INCR', KEYS[3])
  local floor = tonumber(ARGV[4])
  if token <= floor then
    token = floor + 1
    redis.call('SET', KEYS[3], token)
  end
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  redis.call('SET', KEYS[2], token, 'PX', ARGV[2])
  return {1, tostring(token)}
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
        self.keys = [leader_key(namespace), token_key(namespace), fencing_key(namespace)]
        self._claim = redis.register_script(CLAIM)
        self._release = redis.register_script(RELEASE)

    async def claim(self, token: int | None, highest_seen: int) -> Granted | HeldElsewhere:
        """Renew this instance's lease (`token`), or acquire it if nobody holds it."""
        args: list[str | int] = [
            self.instance,
            self.ttl_ms,
            "" if token is None else token,
            highest_seen,
        ]
        reply = await self._claim(keys=self.keys, args=args)
        if int(reply[0]) == 1:
            return Granted(int(reply[1]))
        holder, held, pttl_ms = reply[1:4]
        return HeldElsewhere(_text(holder), _token(held), max(0, int(pttl_ms)) / 1000)

    async def release(self, token: int) -> bool:
        """Give the lease up (a clean stop): the follower takes over at once."""
        return bool(await self._release(keys=self.keys[:2], args=[self.instance, token]))


def _text(raw: bytes | str) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


def _token(raw: bytes | str) -> int | None:
    """A fencing token is a decimal integer (INCR's); anything else was not written by us."""
    text = _text(raw)
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 18 else None

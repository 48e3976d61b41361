"""The leader lease in Redis: `{ns}:leader` holds the leader's instance id, `{ns}:leader:token`
its fencing token (both expire together after lease_ttl), `{ns}:leader:fencing` the counter
every acquisition INCRs. Each operation is one Lua script, so a claim never sets the lease
without a new token, and a renewal extends only the caller's own lease (compare-and-extend).

A token never goes backward, even when Redis lost the counter (a FLUSHALL, a failover to a
replica that missed the last INCR): the claimant sends the highest token it has seen, and a
counter at or below it is moved past it. What it has seen survives its restart (token_memory.py):
a follower's claim returns the counter too, so every instance knows the cluster's highest token
as of its last claim.

One instance id, one process: every claim first takes or renews `{ns}:identity:{id}`, which
holds the process's boot nonce (random, new at every start) and expires after lease_ttl like
the lease. A claim that finds another nonce there is refused (`IdentityTaken`): another
process runs with this instance id. The lease, too, belongs to the holder's id *and* nonce
(`{ns}:leader:boot`), so a second process with the same id never renews nor re-takes the
first one's lease: two processes with one id can never both believe they hold it.
"""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from supervisor.stored import SIGHTINGS, counter_text
from supervisor.stored_redis import (
    TTL_MS,
    aside_key,
    is_wrong_type,
    move_string,
    repair_types,
    store_of,
)

log = logging.getLogger("supervisor")

# What a claim writes into the lease's holder key (config's Name): anything else is not a
# holder.
HOLDER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")

# KEYS: leader, token, fencing counter, the leader's boot nonce, this id's identity, where a
# counter INCR refuses goes. ARGV: instance, ttl ms, the caller's token ("" if none), the
# highest token the caller has seen, the caller's boot nonce, ttl ms of a value set aside,
# "1" if the caller may not create the counter (it has seen no token since it started).
# Returns {1, token, recovered} when the caller holds the lease now (recovered: 1 if the
# counter INCR refused had to be moved past the highest token known), {0, holder, token,
# pttl ms, counter} when another instance does, {2, nonce, pttl ms} when another process holds this
# instance id, {3, holder, token, pttl ms} when the counter is missing and the caller may not
# create it (nothing written, not even its identity).
CLAIM = """
local owner = redis.call('GET', KEYS[5])
if owner and owner ~= ARGV[5] then
  return {2, owner, redis.call('PTTL', KEYS[5])}
end
if ARGV[7] == '1' and redis.call('EXISTS', KEYS[3]) == 0 then
  local holder = redis.call('GET', KEYS[1])
  return {3, holder or '', redis.call('GET', KEYS[2]) or '', redis.call('PTTL', KEYS[1])}
end
redis.call('SET', KEYS[5], ARGV[5], 'PX', ARGV[2])
local holder = redis.call('GET', KEYS[1])
local held = redis.call('GET', KEYS[2])
local mine = holder == ARGV[1] and redis.call('GET', KEYS[4]) == ARGV[5]
if mine and ARGV[3] ~= '' and held == ARGV[3] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
  redis.call('PEXPIRE', KEYS[4], ARGV[2])
  return {1, ARGV[3], 0}
end
if holder == false or mine then
  local floor = tonumber(ARGV[4])
  if held and string.match(held, '^%d+$') and string.len(held) < 16 then
    floor = math.max(floor, tonumber(held))
  end
  local token = redis.pcall('INCR', KEYS[3])
  local recovered = 0
  if type(token) == 'table' then
    recovered = 1
    if redis.call('TYPE', KEYS[3]).ok == 'string' then
      redis.call('SET', KEYS[6], redis.call('GET', KEYS[3]), 'PX', ARGV[6])
    else
      redis.call('RENAME', KEYS[3], KEYS[6])
      redis.call('PEXPIRE', KEYS[6], ARGV[6])
    end
    token = floor + 1
    redis.call('SET', KEYS[3], token)
  elseif token <= floor then
    token = floor + 1
    redis.call('SET', KEYS[3], token)
  end
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  redis.call('SET', KEYS[2], token, 'PX', ARGV[2])
  redis.call('SET', KEYS[4], ARGV[5], 'PX', ARGV[2])
  return {1, tostring(token), recovered}
end
local counter = redis.call('TYPE', KEYS[3]).ok == 'string' and redis.call('GET', KEYS[3])
return {0, holder, held or '', redis.call('PTTL', KEYS[1]), counter or ''}
"""

# KEYS: leader, token, the leader's boot nonce, this id's identity. ARGV: instance, token,
# boot nonce. Gives the lease up if the caller still holds it, and the instance id if it is
# still the caller's (a clean stop: a restart need not wait for them to expire).
RELEASE = """
local released = 0
if redis.call('GET', KEYS[1]) == ARGV[1] and redis.call('GET', KEYS[2]) == ARGV[2]
    and redis.call('GET', KEYS[3]) == ARGV[3] then
  released = redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
end
if redis.call('GET', KEYS[4]) == ARGV[3] then
  redis.call('DEL', KEYS[4])
end
return released
"""


def leader_key(namespace: str) -> str:
    return f"{namespace}:leader"


def token_key(namespace: str) -> str:
    return f"{namespace}:leader:token"


def fencing_key(namespace: str) -> str:
    return f"{namespace}:leader:fencing"


def boot_key(namespace: str) -> str:
    return f"{namespace}:leader:boot"


def identity_key(namespace: str, instance: str) -> str:
    return f"{namespace}:identity:{instance}"


def lease_keys(namespace: str) -> list[str]:
    """The lease's keys (strings), the instance's identity aside."""
    return [
        leader_key(namespace),
        token_key(namespace),
        fencing_key(namespace),
        boot_key(namespace),
    ]


def new_boot_nonce() -> str:
    """A process's own mark, new at every start: two processes never share one."""
    return secrets.token_hex(8)


@dataclass(frozen=True)
class Granted:
    token: int


@dataclass(frozen=True)
class IdentityTaken:
    """Another process (boot nonce `owner`) holds this instance id; nothing was claimed."""

    owner: str
    remaining_s: float | None  # how long its hold has left, by Redis; None: it never expires


@dataclass(frozen=True)
class CounterMissing:
    """Redis holds no fencing counter and the caller asked not to create it: nothing was
    claimed or written. `holder`: who holds the lease ("" nobody), as for HeldElsewhere."""

    holder: str
    token: int | None
    remaining_s: float


@dataclass(frozen=True)
class HeldElsewhere:
    holder: str  # "" when nobody holds it (cannot happen after a claim, kept for reads)
    token: int | None  # None if the token key holds no number (written by hand)
    remaining_s: float  # how long the holder's lease has left, by Redis
    counter: int | None = None  # `{ns}:leader:fencing`; None if it holds no counter


class LeaseStore:
    def __init__(
        self, redis: Redis, namespace: str, instance: str, ttl_s: float, boot: str = ""
    ) -> None:
        self.instance = instance
        self.boot = boot or new_boot_nonce()
        self.ttl_ms = int(ttl_s * 1000)
        self.keys = [*lease_keys(namespace), identity_key(namespace, instance)]
        self.namespace = namespace
        self._redis = redis
        self.aside = aside_key(namespace, fencing_key(namespace))
        self._claim = redis.register_script(CLAIM)
        self._release = redis.register_script(RELEASE)

    async def claim(
        self, token: int | None, highest_seen: int, keep_counter_missing: bool = False
    ) -> Granted | HeldElsewhere | IdentityTaken | CounterMissing:
        """Renew this process's lease (`token`), or acquire it if nobody holds it; first
        this process's hold on its instance id. `keep_counter_missing`: write nothing if
        the fencing counter is missing (CounterMissing)."""
        args: list[str | int] = [
            self.instance,
            self.ttl_ms,
            "" if token is None else token,
            highest_seen,
            self.boot,
            TTL_MS,
            "1" if keep_counter_missing else "0",
        ]
        reply = await self._claim_once(args)
        if await self._set_aside_foreign_hold(reply):  # garbage held the lease
            reply = await self._claim_once(args)
        if int(reply[0]) == 1:
            if int(reply[2]) == 1:
                self._recovered(int(reply[1]), highest_seen)
            return Granted(int(reply[1]))
        if int(reply[0]) == 2:
            pttl_ms = int(reply[2])
            return IdentityTaken(_text(reply[1]), pttl_ms / 1000 if pttl_ms >= 0 else None)
        if int(reply[0]) == 3:
            holder, held, pttl_ms = reply[1:4]
            return CounterMissing(_text(holder), _token(held), max(0, int(pttl_ms)) / 1000)
        holder, held, pttl_ms, counter = reply[1:5]
        remaining_s = max(0, int(pttl_ms)) / 1000
        return HeldElsewhere(_text(holder), _token(held), remaining_s, counter_text(counter))

    async def _claim_once(self, args: list[str | int]) -> list[Any]:
        try:
            return list(await self._claim(keys=[*self.keys, self.aside], args=args))
        except ResponseError as exc:  # a key of the wrong type (by hand): set aside, again
            if not is_wrong_type(exc):
                raise
            await repair_types(self._redis, self.namespace, dict.fromkeys(self.keys, "string"))
            return list(await self._claim(keys=[*self.keys, self.aside], args=args))

    async def _set_aside_foreign_hold(self, reply: list[Any]) -> bool:
        """A lease held by a value no claim writes (not an instance id, or without the
        expiry every claim sets) would refuse every claim forever: it is set aside, said
        once and counted, like every unreadable entry. True when it was moved (claim
        again). The identity key is left alone: a hold that never expires is told apart
        (IdentityTaken with no expiry, lease_keeper.py)."""
        if int(reply[0]) != 0:
            return False
        key, raw, pttl_ms = self.keys[0], reply[1], int(reply[3])
        assert isinstance(raw, bytes | str)
        holder = HOLDER.fullmatch(_text(raw))
        if holder and pttl_ms != -1:
            return False
        why = "a lease without expiry" if holder else "not an instance id"
        then = f"set aside as {aside_key(self.namespace, key)}; the lease claimed again"
        SIGHTINGS.report(store_of(self.namespace, key), key, raw, why, then)
        return await move_string(self._redis, self.namespace, key, raw)

    def _recovered(self, token: int, highest_seen: int) -> None:
        counter = self.keys[2]
        why = "INCR refused it (not an integer, or at 2**63-1)"
        then = f"moved past the highest token known ({highest_seen}) to {token}"
        SIGHTINGS.report("leader", counter, str(token), why, f"{then}; set aside as {self.aside}")
        log.warning("%s could not be incremented: recovered, %s", counter, then)

    async def release(self, token: int | None) -> bool:
        """Give the lease (and the instance id) up on a clean stop: a follower takes over at
        once, and a restart with this id need not wait."""
        keys = [self.keys[0], self.keys[1], self.keys[3], self.keys[4]]
        args = [self.instance, "" if token is None else token, self.boot]
        return bool(await self._release(keys=keys, args=args))


def _text(raw: bytes | str) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


def _token(raw: bytes | str) -> int | None:
    """A fencing token is a decimal integer (INCR's); anything else was not written by us."""
    text = _text(raw)
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 18 else None

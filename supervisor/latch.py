"""Engagements that survive restarts: a file in state_dir and a Redis hash, merged on start.

What is engaged (actuator -> level, reason, when) is written to `state_dir/engaged.json`
(atomically: temp file, fsync, rename) and to the `{ns}:engaged` hash. On start both are read
and merged, the most restrictive entry winning, so neither a crash, a lost state_dir nor a
flushed Redis silently re-arms trading. Only a manual reset removes an engagement: it writes
`{ns}:reset` (actuator -> sequence number of the reset) before deleting the hash entry, and
an engagement older than its actuator's last reset is void.

Older is decided by one counter, `{ns}:seq` in Redis (INCR), never by a clock: an operator
whose laptop runs ten minutes ahead must not void the kill switch engaged after their reset.
An engagement takes its number when it is first written to Redis; until then (Redis away)
it has none and counts as newer than every reset, so it can only err toward staying engaged.
Writing a numbered engagement back (Redis lost it: a FLUSHALL, a restart without
persistence) first raises `{ns}:seq` to its number, or the next reset would be numbered
below it and release nothing. For the same reason every number is given above every number
its giver knows (a counter lost with Redis restarts low), a daemon raises the counter to
the highest number it knows on every pass, and a reset first reads every latch it can (the
published ones and state_dir's) so that it is numbered above all of them: an engagement it
learns of was made before it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from supervisor import stored
from supervisor.keys import aside_key, engaged_key, reset_key, seq_key
from supervisor.model import TradingState
from supervisor.snapshot_file import write_atomically
from supervisor.stored_redis import (
    TTL_MS,
    is_not_a_counter,
    is_wrong_type,
    repair_types,
    set_aside_field,
)
from supervisor.text import safe_line

log = logging.getLogger(__name__)

ENGAGED_FILE = "engaged.json"
COUNTER_POLL_S = 0.1  # how often a reset looks whether a daemon has put `{ns}:seq` back

# KEYS: the counter, where a value it cannot hold goes. ARGV: the lowest number it may give
# now (above every number this instance knows), ttl ms of the value set aside. A counter INCR
# refuses (not an integer, at 2**63-1, not a string) is set aside and moved to ARGV[1];
# one another instance recovered meanwhile is incremented, to no less than ARGV[1].
RECOVER_COUNTER = """
local found = redis.call('TYPE', KEYS[1]).ok
if found ~= 'none' and found ~= 'string' then
  redis.call('RENAME', KEYS[1], KEYS[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
else
  local value = redis.call('GET', KEYS[1])
  if value and string.match(value, '^%d+$') and string.len(value) < 19 then
    local next = redis.call('INCR', KEYS[1])
    if next >= tonumber(ARGV[1]) then
      return tostring(next)
    end
  elseif value then
    redis.call('SET', KEYS[2], value, 'PX', ARGV[2])
  end
end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]
"""

# KEYS: the counter, the engaged hash. ARGV: the latch's number, its name, its JSON.
SAVE_NUMBERED = """
if (tonumber(redis.call('GET', KEYS[1])) or 0) < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1])
end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
"""


# KEYS: the counter. ARGV: the lowest number it may give now. INCR, never below ARGV[1].
INCR_AT_LEAST = """
local value = tonumber(redis.call('GET', KEYS[1]))
if value and value < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1])
  return ARGV[1]
end
return tostring(redis.call('INCR', KEYS[1]))
"""

# KEYS: the reset hash. ARGV: name, number, name, number... Raises each entry to its number
# (a missing or unreadable entry is written).
RAISE_RESETS = """
for i = 1, #ARGV, 2 do
  local held = tonumber(redis.call('HGET', KEYS[1], ARGV[i]) or '')
  if held == nil or held < tonumber(ARGV[i + 1]) then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  end
end
"""

# KEYS: the counter. ARGV: a number it must not be below (a number already given).
RAISE_COUNTER = """
if (tonumber(redis.call('GET', KEYS[1])) or 0) < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1])
end
"""


@dataclass(frozen=True)
class Latch:
    level: TradingState
    reason: str
    at: float  # wall-clock time, for people and auto_reset_after; never for ordering
    watchdog: str = ""  # the watchdog whose incident engaged it; "" for manual or restored
    seq: int | None = None  # its place in `{ns}:seq`; None: not yet written to Redis

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "level": self.level.name})

    @classmethod
    def from_json(cls, raw: str | bytes) -> Latch:
        """Raises Unreadable for anything that is not a whole latch (stored.py)."""
        return cls.from_value(stored.decode_json(raw))

    @classmethod
    def from_value(cls, value: object) -> Latch:
        data = stored.mapping(value, "a latch")
        level_name = stored.text(data, "level")
        if level_name not in TradingState.__members__:
            raise stored.Unreadable(f"level {safe_line(level_name, 20)!r} is not a trading state")
        return cls(
            TradingState[level_name],
            stored.text(data, "reason"),
            stored.number(data, "at"),
            stored.text(data, "watchdog", ""),
            stored.optional_counter(data, "seq"),
        )

    def voided_by(self, reset_seq: int | None) -> bool:
        """True when a reset numbered `reset_seq` came after this engagement."""
        return reset_seq is not None and self.seq is not None and self.seq < reset_seq


def merge(*sources: dict[str, Latch]) -> dict[str, Latch]:
    """Per actuator, the most restrictive latch (the earliest at equal level). A latch not yet
    numbered takes the number another source knows for the same actuator: Redis holding a
    numbered entry means no reset came after it, and a reset after it must be able to void it."""
    merged: dict[str, Latch] = {}
    for source in sources:
        for name, latch in source.items():
            current = merged.get(name)
            if current is None:
                merged[name] = latch
                continue
            wins = (latch.level, -latch.at) > (current.level, -current.at)
            winner, loser = (latch, current) if wins else (current, latch)
            merged[name] = winner if winner.seq is not None else replace(winner, seq=loser.seq)
    return merged


def without_reset(latches: dict[str, Latch], resets: dict[str, int]) -> dict[str, Latch]:
    """Drop latches that a later manual reset voided."""
    return {n: latch for n, latch in latches.items() if not latch.voided_by(resets.get(n))}


def file_content(latches: dict[str, Latch]) -> bytes:
    """What engaged.json holds for `latches`."""
    payload = {name: json.loads(latch.to_json()) for name, latch in latches.items()}
    return json.dumps(payload, indent=1, sort_keys=True).encode()


class LatchStore:
    def __init__(self, state_dir: Path, redis: Redis, namespace: str) -> None:
        self.path = state_dir / ENGAGED_FILE
        self.redis = redis
        self.namespace = namespace
        self.key = engaged_key(namespace)
        self.highest_seq = 0  # the highest number of `{ns}:seq` this instance has seen

    def load_file(self) -> dict[str, Latch]:
        """The latches in state_dir. An unreadable file, or one with an unreadable entry, is
        said, counted and set aside (its readable entries are written back); Redis may still
        know."""
        then = "relying on Redis for the engaged actuators it held"
        try:
            found = stored.read_file_guarded(self.path, ENGAGED_FILE, then)
        except OSError as exc:  # never guess "nothing engaged": say so loudly
            log.error("cannot read %s (%s): %s", self.path, exc, then)
            return {}
        if found is None:
            return {}
        raw, data = found
        if not isinstance(data, dict):
            stored.unreadable_file(self.path, ENGAGED_FILE, raw, "not a JSON object", then)
            return {}
        latches, bad = {}, []
        for name, value in data.items():
            try:
                latches[name] = Latch.from_value(value)
            except stored.Unreadable as exc:
                bad.append(f"{safe_line(name, 40)}: {exc}")
        if bad:
            stored.unreadable_file(self.path, ENGAGED_FILE, raw, "; ".join(bad), then)
            self._write_back(latches)
        return latches

    def _write_back(self, latches: dict[str, Latch]) -> None:
        try:
            self.save_file(latches)
        except OSError as exc:
            log.error("cannot write %s: %s", self.path, exc)

    def save_file(self, latches: dict[str, Latch]) -> None:
        """Write the file now, in this thread (at startup; the daemon's loop hands its
        writes to a worker thread: supervisor/snapshot_file.py). Raises OSError."""
        write_atomically(self.path, file_content(latches))

    async def load_redis(self) -> tuple[dict[str, Latch], dict[str, int]]:
        """(latches, resets) as published in Redis; raises if Redis cannot answer. A key
        of the wrong type (written by hand) is set aside and reads as empty."""
        try:
            raw_latches, raw_resets = await self._read_hashes()
        except ResponseError as exc:
            if not is_wrong_type(exc):
                raise
            keys = {engaged_key(self.namespace): "hash", reset_key(self.namespace): "hash"}
            await repair_types(self.redis, self.namespace, keys)
            raw_latches, raw_resets = await self._read_hashes()
        return await self._latches(raw_latches), await self._resets(raw_resets)

    async def _read_hashes(self) -> list[dict[bytes, bytes]]:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(engaged_key(self.namespace))
            pipe.hgetall(reset_key(self.namespace))
            return list(await pipe.execute())

    async def _latches(self, raw: dict[bytes, bytes]) -> dict[str, Latch]:
        latches = {}
        for field, value in raw.items():
            try:
                latch = latches[stored.key_text(field)] = Latch.from_json(value)
            except stored.Unreadable as exc:
                await set_aside_field(
                    self.redis, self.namespace, self.key, field, value, str(exc), "ignored"
                )
                continue
            self.highest_seq = max(self.highest_seq, latch.seq or 0)
        return latches

    async def _resets(self, raw: dict[bytes, bytes]) -> dict[str, int]:
        resets = {}
        key = reset_key(self.namespace)
        for field, value in raw.items():
            number = stored.counter_text(value)
            try:
                name = stored.key_text(field)
            except stored.Unreadable:
                number = None
            if number is None:  # also an epoch from an older version: it orders nothing now
                why = "not a reset number"
                await set_aside_field(self.redis, self.namespace, key, field, value, why, "ignored")
                continue
            resets[name] = number
            self.highest_seq = max(self.highest_seq, number)
        return resets

    async def save_redis(self, name: str, latch: Latch) -> Latch:
        """Write `latch`, numbering it first if it has no number yet; return it as written."""
        counter = seq_key(self.namespace)
        if latch.seq is None:
            latch = replace(latch, seq=await self.next_seq())
        args = (counter, self.key, str(latch.seq), name, latch.to_json())
        try:
            await self.redis.eval(SAVE_NUMBERED, 2, *args)
        except ResponseError as exc:
            if not is_wrong_type(exc):
                raise
            await repair_types(self.redis, self.namespace, {counter: "string", self.key: "hash"})
            await self.redis.eval(SAVE_NUMBERED, 2, *args)
        return latch

    async def record_reset(self, names: list[str], counter_back_s: float = 0.0) -> int:
        """Mark `names` reset (before anything is released) and drop their entries; return
        the reset's number. Every engagement numbered below it is void from now on: it is
        numbered above every latch and reset known (Redis, state_dir), as those came before
        it even when `{ns}:seq` was lost with Redis. With the counter missing (Redis lost
        it), it first waits up to `counter_back_s` for a running daemon's next pass to put
        it back: a daemon on another host may hold a latch numbered above all it can see."""
        await self._await_counter(counter_back_s)
        await self.load_redis()  # raises self.highest_seq to what is published
        self.learn_file()
        seq = await self.next_seq()
        keys = {reset_key(self.namespace): "hash", engaged_key(self.namespace): "hash"}
        await repair_types(self.redis, self.namespace, keys)  # a reset must go through
        await self.redis.hset(reset_key(self.namespace), mapping=dict.fromkeys(names, str(seq)))
        await self.redis.hdel(engaged_key(self.namespace), *names)
        return seq

    async def _await_counter(self, wait_s: float) -> None:
        counter = seq_key(self.namespace)
        deadline = time.monotonic() + wait_s
        while not await self.redis.exists(counter):
            if time.monotonic() >= deadline:
                return
            await asyncio.sleep(COUNTER_POLL_S)

    def learn_file(self) -> None:
        """Raise self.highest_seq to the numbers of the latches in state_dir, read only: an
        unreadable file or entry teaches nothing (the daemon that owns it says so)."""
        try:
            data = stored.decode_json(self.path.read_bytes())
        except (OSError, stored.Unreadable):
            return
        if not isinstance(data, dict):
            return
        for value in data.values():
            try:
                seq = Latch.from_value(value).seq
            except stored.Unreadable:
                continue
            self.highest_seq = max(self.highest_seq, seq or 0)

    async def keep_counter(self, known: int) -> None:
        """Raise `{ns}:seq` to `known` (and every number seen) if it is below: a counter lost
        with Redis must not number the next reset below a latch still engaged."""
        self.highest_seq = max(self.highest_seq, known)
        if self.highest_seq == 0:
            return
        counter = seq_key(self.namespace)
        try:
            await self.redis.eval(RAISE_COUNTER, 1, counter, str(self.highest_seq))
        except ResponseError as exc:
            if not is_wrong_type(exc):
                raise
            await repair_types(self.redis, self.namespace, {counter: "string"})
            await self.redis.eval(RAISE_COUNTER, 1, counter, str(self.highest_seq))

    async def keep_resets(self, known: dict[str, int]) -> None:
        """Raise `{ns}:reset` to every reset number in `known` (those this instance has read):
        lost with Redis, a reset would let a latch written back from a state_dir engage
        again. A reset numbered below a later latch voids nothing, so writing an old one
        back is harmless; `{ns}:seq` is kept above it (keep_counter)."""
        if not known:
            return
        key = reset_key(self.namespace)
        args = [str(part) for pair in sorted(known.items()) for part in pair]
        try:
            await self.redis.eval(RAISE_RESETS, 1, key, *args)
        except ResponseError as exc:
            if not is_wrong_type(exc):
                raise
            await repair_types(self.redis, self.namespace, {key: "hash"})
            await self.redis.eval(RAISE_RESETS, 1, key, *args)

    async def next_seq(self) -> int:
        """INCR `{ns}:seq`, never to a number this instance knows (the counter may have been
        lost with Redis); a counter INCR refuses is recovered (docs/operations.md,
        "Unreadable entries"): moved past every number this instance knows, never backward."""
        counter = seq_key(self.namespace)
        try:
            seq = int(await self.redis.incr(counter))
            if seq <= self.highest_seq < stored.MAX_COUNTER:
                floor = str(self.highest_seq + 1)
                seq = int(await self.redis.eval(INCR_AT_LEAST, 1, counter, floor))
        except ResponseError as exc:
            if not (is_wrong_type(exc) or is_not_a_counter(exc)):
                raise
            seq = await self._recover_seq(counter, str(exc))
        self.highest_seq = max(self.highest_seq, seq)
        return seq

    async def _recover_seq(self, counter: str, why: str) -> int:
        latches, resets = await self.load_redis()  # also raises self.highest_seq to what is known
        floor = self.highest_seq + 1
        if floor > stored.MAX_COUNTER:
            raise ResponseError(f"{counter} cannot be recovered: {floor - 1} is known")
        aside = aside_key(self.namespace, counter)
        raw = await self.redis.eval(RECOVER_COUNTER, 2, counter, aside, str(floor), TTL_MS)
        seq = int(raw)
        stored.SIGHTINGS.report(
            "seq", counter, why.encode(), why, f"moved past {floor - 1}, the highest number known"
        )
        log.warning(
            "%s could not be incremented (%s): recovered, moved to %d (past %d latches and"
            " %d resets known; the old value set aside as %s)",
            counter,
            safe_line(why, 80),
            seq,
            len(latches),
            len(resets),
            aside,
        )
        return seq

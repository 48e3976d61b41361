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
below it and release nothing.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from redis.asyncio import Redis

from supervisor.model import TradingState

log = logging.getLogger(__name__)

ENGAGED_FILE = "engaged.json"

# KEYS: the counter, the engaged hash. ARGV: the latch's number, its name, its JSON.
SAVE_NUMBERED = """
if (tonumber(redis.call('GET', KEYS[1])) or 0) < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1])
end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
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
    def from_json(cls, text: str | bytes) -> Latch:
        data = json.loads(text)
        level, reason, at = TradingState[data["level"]], str(data["reason"]), float(data["at"])
        seq = data.get("seq")
        if seq is not None and (isinstance(seq, bool) or not isinstance(seq, int)):
            raise ValueError(f"seq must be an integer, not {type(seq).__name__}")
        return cls(level, reason, at, str(data.get("watchdog", "")), seq)

    def voided_by(self, reset_seq: int | None) -> bool:
        """True when a reset numbered `reset_seq` came after this engagement."""
        return reset_seq is not None and self.seq is not None and self.seq < reset_seq


def engaged_key(namespace: str) -> str:
    return f"{namespace}:engaged"


def reset_key(namespace: str) -> str:
    return f"{namespace}:reset"


def seq_key(namespace: str) -> str:
    return f"{namespace}:seq"


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


class LatchStore:
    def __init__(self, state_dir: Path, redis: Redis, namespace: str) -> None:
        self.path = state_dir / ENGAGED_FILE
        self.redis = redis
        self.namespace = namespace
        self.key = engaged_key(namespace)

    def load_file(self) -> dict[str, Latch]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return {name: Latch.from_json(json.dumps(v)) for name, v in data.items()}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            # Unreadable: say so loudly; Redis may still know. Never guess "nothing engaged".
            log.error("cannot read %s (%s): relying on Redis for engaged actuators", self.path, exc)
            return {}

    def save_file(self, latches: dict[str, Latch]) -> None:
        payload = {name: json.loads(latch.to_json()) for name, latch in latches.items()}
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        with temporary.open("w", encoding="utf-8") as handle:
            json.dump(payload, handle, indent=1, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.path)

    async def load_redis(self) -> tuple[dict[str, Latch], dict[str, int]]:
        """(latches, resets) as published in Redis; raises if Redis cannot answer."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(engaged_key(self.namespace))
            pipe.hgetall(reset_key(self.namespace))
            raw_latches, raw_resets = await pipe.execute()
        latches = {}
        for name, value in raw_latches.items():
            try:
                latches[name.decode()] = Latch.from_json(value)
            except (ValueError, KeyError, TypeError):
                log.error("ignoring unreadable %s entry %r", engaged_key(self.namespace), name)
        resets = {}
        for name, value in raw_resets.items():
            try:
                resets[name.decode()] = int(value)
            except ValueError:  # an epoch from an older version: it orders nothing now
                continue
        return latches, resets

    async def save_redis(self, name: str, latch: Latch) -> Latch:
        """Write `latch`, numbering it first if it has no number yet; return it as written."""
        counter = seq_key(self.namespace)
        if latch.seq is None:
            latch = replace(latch, seq=await self.redis.incr(counter))
        await self.redis.eval(
            SAVE_NUMBERED, 2, counter, self.key, str(latch.seq), name, latch.to_json()
        )
        return latch

    async def record_reset(self, names: list[str]) -> int:
        """Mark `names` reset (before anything is released) and drop their entries; return
        the reset's number. Every engagement numbered below it is void from now on."""
        seq: int = await self.redis.incr(seq_key(self.namespace))
        await self.redis.hset(reset_key(self.namespace), mapping=dict.fromkeys(names, str(seq)))
        await self.redis.hdel(engaged_key(self.namespace), *names)
        return seq

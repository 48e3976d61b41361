"""How tick_freshness reads its instruments: in bounded batches, all batches pipelined.

- a plain value or `json_field`: `MGET` of `BATCH` keys per command;
- a hash `field` (HMGET reads fields of one key, not one field of many) or a stream's newest
  entry: `HGET` or `XREVRANGE key + - COUNT 1` per key, run `SCRIPT_BATCH` (streams:
  `STREAM_BATCH`) keys at a time by one small read-only Lua script (`PER_KEY`): a check then
  reads a few hundred replies, not 100,000 (redis-py spends ~6 us on each reply it reads).

Batches keep every command short: Redis runs one command at a time, and the trading stack
shares it. Measured with `INFO commandstats` on a loaded 2-core machine, an `MGET` costs the
server ~0.3 us per key, the script ~1 us per `HGET` and ~4 us per `XREVRANGE`: 1,000, 500
and 50 keys hold it for ~0.3, ~0.5 and ~0.2 ms, under the 1 ms budget (the benchmark's
evaluation rows show the longest command and `SLOWLOG` at 1 ms for a 100,000 check).

The full read is packed once (the keys are configured); a deadline re-run packs the few keys
that came due. `MGET` answers nil both for a missing key and for a key of another type, so
the keys it answers nil for are read again with `GET` (through the script), which tells the
two apart (WRONGTYPE).
"""

from __future__ import annotations

from collections.abc import Sequence

from redis.asyncio import Redis

from supervisor.sources.redis import Packed, pack, send

BATCH = 1000  # keys per MGET
SCRIPT_BATCH = 500  # keys per run of PER_KEY reading a value (HGET, GET)
STREAM_BATCH = 50  # keys per run of PER_KEY reading a stream's newest entry (~4 us a key)
# One read command (ARGV[1], its arguments after the key in ARGV[2..]) for each key; pcall
# keeps a WRONGTYPE as that key's error, and nil comes back as false, which stays in place.
PER_KEY = (
    "local r = {} for i, k in ipairs(KEYS) do"
    " r[i] = redis.pcall(ARGV[1], k, unpack(ARGV, 2)) end return r"
)


class TickReads:
    def __init__(self, keys: Sequence[str], field: str | None, stream: bool) -> None:
        self.keys = [key.encode() for key in keys]
        self.field = field.encode() if field is not None else None
        self.stream = stream
        self.multi_key = not stream and field is None  # plain values and json_field: MGET
        self.batch = BATCH if self.multi_key else STREAM_BATCH if stream else SCRIPT_BATCH
        self._everything = self._pack(range(len(self.keys)))

    async def read(self, redis: Redis, indices: Sequence[int] | None = None) -> list[object]:
        """One reply per key, in order: every key, or the keys at `indices`. A reply is the
        value (bytes), None (missing), the raw XREVRANGE answer, or a ResponseError."""
        chosen = range(len(self.keys)) if indices is None else indices
        packed = self._everything if indices is None else self._pack(chosen)
        replies = await send(redis, packed)
        values = _flatten(replies, len(chosen), self.batch)
        if not self.multi_key:
            return values
        if None in values:  # a scan in C; the positions only when there is one
            missing = [n for n, value in enumerate(values) if value is None]
            keys = [self.keys[chosen[n]] for n in missing]
            again = await send(redis, per_key(keys, (b"GET",), SCRIPT_BATCH))
            again = _flatten(again, len(keys), SCRIPT_BATCH)
            for n, value in zip(missing, again, strict=True):
                values[n] = value
        return values

    def _pack(self, indices: Sequence[int]) -> Packed:
        keys = [self.keys[i] for i in indices]
        if self.multi_key:
            return pack([(b"MGET", *keys[at : at + BATCH])] for at in range(0, len(keys), BATCH))
        if self.stream:
            return per_key(keys, (b"XREVRANGE", b"+", b"-", b"COUNT", b"1"), self.batch)
        assert self.field is not None
        return per_key(keys, (b"HGET", self.field), self.batch)


def per_key(keys: list[bytes], command: tuple[bytes, ...], size: int) -> Packed:
    """`command` (its name and what follows the key) for every key, `size` keys a run."""
    return pack(
        [(b"EVAL", PER_KEY, len(batch), *batch, *command)]
        for batch in (keys[at : at + size] for at in range(0, len(keys), size))
    )


def _flatten(replies: list[object], count: int, batch: int) -> list[object]:
    """The batches' answers as one value per key; a batch that failed as a whole (an error
    reply) gives its error to each of its keys."""
    values: list[object] = []
    for number, reply in enumerate(replies):
        size = min(batch, count - number * batch)
        if isinstance(reply, list) and len(reply) == size:
            values += reply
        elif isinstance(reply, Exception):
            values += [reply] * size
        else:
            values += [ValueError(f"unexpected reply: {type(reply).__name__}")] * size
    return values

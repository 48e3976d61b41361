"""Every live instance's own record, for `status`: `{ns}:instance:{id}` (a hash that expires
after three housekeeping cycles without an update) and `{ns}:instances` (the set of ids ever
seen; a member whose hash has expired is not live).

Each instance publishes what it believes about the lease and the verdicts it sees, so
`status` can show who leads, with which token and since when, and whether the followers,
warm, see what the leader sees.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from supervisor.constants import HEARTBEAT_TTL_CYCLES, HOUSEKEEPING_INTERVAL_S
from supervisor.keys import instance_key, instances_key

MAX_INSTANCES_SHOWN = 20  # ids ever seen can pile up (renamed hosts): status reads this many


@dataclass(frozen=True)
class InstanceRecord:
    instance: str
    role: str
    leader: str  # as this instance last read it ("" unknown)
    fencing_token: str  # of its own lease while it leads, else ""
    lease_age_s: str  # how long it has led, by its own clock, else ""
    trading_state: str
    health: str
    verdicts: str  # JSON {watchdog: status}, sorted
    version: str
    updated_at: str  # epoch seconds, by its clock (for display only)


def verdicts_json(statuses: Mapping[str, str]) -> str:
    return json.dumps(dict(sorted(statuses.items())), separators=(",", ":"))


async def publish_instance(redis: Redis, namespace: str, record: InstanceRecord) -> None:
    ttl_ms = int(HEARTBEAT_TTL_CYCLES * HOUSEKEEPING_INTERVAL_S * 1000)
    key = instance_key(namespace, record.instance)
    mapping: Any = asdict(record)  # redis-py types `mapping` invariantly
    async with redis.pipeline(transaction=True) as pipe:
        pipe.delete(key)
        pipe.hset(key, mapping=mapping)
        pipe.pexpire(key, ttl_ms)
        pipe.sadd(instances_key(namespace), record.instance)
        await pipe.execute()


async def read_instances(redis: Redis, namespace: str) -> list[dict[str, str]]:
    """The live instances' records (leader first, then by id). A key of the wrong type
    (written by hand) reads as no record: the others are still shown."""
    try:
        raw_members = await redis.smembers(instances_key(namespace))
    except ResponseError:  # not a set
        return []
    members = sorted(_text(m) for m in raw_members)[:MAX_INSTANCES_SHOWN]
    async with redis.pipeline(transaction=False) as pipe:
        for member in members:
            pipe.hgetall(instance_key(namespace, member))
        hashes = await pipe.execute(raise_on_error=False)
    for result in hashes:
        if isinstance(result, Exception) and not isinstance(result, ResponseError):
            raise result  # the connection, not a key
    records = [h for h in hashes if isinstance(h, dict) and h]
    live = [{_text(k): _text(v) for k, v in h.items()} for h in records]
    return sorted(live, key=lambda r: (r.get("role") != "leader", r.get("instance", "")))


def _text(raw: bytes | str) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)

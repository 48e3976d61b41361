"""The nemesis's garbage, written to a real Redis: every kind lands on every key of the
namespace it aims at, whatever type the key held before, and is really what it says."""

from __future__ import annotations

import json

import pytest
from redis import Redis

from testbed.nemesis.faults import garbage_value, write_garbage
from testbed.nemesis.schedule import GARBAGE_KEYS, GARBAGE_VALUES


def read_back(client: Redis, key: str, kind: str, expected: bytes) -> object:
    """What the key holds where write_garbage put it, by the key's type now."""
    if kind == "string":
        return client.get(key)
    if kind == "hash":
        return client.hget(key, "breaker")
    if kind == "stream":
        entries: list[tuple[bytes, dict[bytes, bytes]]] = client.xrange(key)  # type: ignore[assignment]
        return entries[-1][1][b"id"]
    assert kind == "set", kind
    return expected if client.sismember(key, expected) else None  # type: ignore[arg-type]


@pytest.mark.parametrize("value", GARBAGE_VALUES)
@pytest.mark.parametrize("before", ["none", "string", "hash", "stream", "set"])
def test_every_garbage_lands_on_every_key(sync_redis: Redis, value: str, before: str) -> None:
    for short in GARBAGE_KEYS:
        key = f"sup:{short.replace('*', 'a')}"
        sync_redis.delete(key)
        if before == "string":
            sync_redis.set(key, "1")
        elif before == "hash":
            sync_redis.hset(key, "breaker", "{}")
        elif before == "stream":
            sync_redis.xadd(key, {"id": "x"})
        elif before == "set":
            sync_redis.sadd(key, "a")
        write_garbage(sync_redis, key, {"value": value, "field": "breaker"})
        kind = sync_redis.type(key).decode()  # type: ignore[union-attr]
        if value == "wrong_type":
            assert kind == "list"
            continue
        stored = read_back(sync_redis, key, kind, garbage_value(value))
        assert stored == garbage_value(value), (short, before, kind)


def test_the_values_are_the_garbage_they_claim_to_be() -> None:
    with pytest.raises(OverflowError):
        float(json.loads(garbage_value("huge_int"))["at"])
    with pytest.raises(RecursionError):
        json.loads(garbage_value("deep"))
    with pytest.raises(UnicodeDecodeError):
        garbage_value("not_utf8").decode()
    assert isinstance(json.loads(garbage_value("wrong_shape")), list)
    assert int(garbage_value("max_int")) == 2**63 - 1  # INCR of it overflows

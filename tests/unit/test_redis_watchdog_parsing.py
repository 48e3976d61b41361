"""The Redis kinds' value parsers fed anything: only verdicts come out, never exceptions."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from supervisor.model import Status, Verdict
from supervisor.remedies import show_owner
from supervisor.watchdogs.cb_staleness import CbStaleness, CbStalenessConfig
from supervisor.watchdogs.lock_ttl import LockTtl, LockTtlConfig, observe
from supervisor.watchdogs.redis_value import RedisValue, RedisValueConfig
from supervisor.watchdogs.tick_freshness import TickFreshness, TickFreshnessConfig

# Constructing a client does no I/O; these tests never send a command.
CLIENT = Redis.from_url("redis://127.0.0.1:1/0")
NOW = 1_795_000_000.0
JSON = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(["a", "b", "updated_at"]), children, max_size=3)
    ),
    max_leaves=12,
)
REPLY = st.one_of(
    st.none(),
    st.binary(max_size=80),
    st.text(max_size=80),
    st.integers(),
    st.floats(),
    st.booleans(),
    st.builds(lambda d: json.dumps(d).encode(), JSON),
    st.just(ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value")),
)
LOCK_PTTL = st.one_of(st.integers(min_value=-5, max_value=10**12), REPLY)
TIMES = st.floats(min_value=0, max_value=4e9, allow_nan=False)


def assert_sound(verdict: Verdict) -> None:
    assert isinstance(verdict, Verdict)
    assert verdict.status in Status
    assert verdict.reason.startswith(verdict.subject)
    if verdict.value is not None:
        assert math.isfinite(verdict.value)
    if verdict.status is not Status.UNKNOWN and verdict.value is None:
        assert "missing" in verdict.reason or "not held" in verdict.reason


def redis_value(**overrides: Any) -> RedisValue:
    fields = {"name": "v", "kind": "redis_value", "key": "k", "warn": 1, "breach": 2}
    return RedisValue(RedisValueConfig.model_validate({**fields, **overrides}), CLIENT)


def cb_staleness(**overrides: Any) -> CbStaleness:
    fields = {"name": "cb", "kind": "cb_staleness", "key": "cb"}
    return CbStaleness(CbStalenessConfig.model_validate({**fields, **overrides}), CLIENT)


REDIS_VALUES = [redis_value(), redis_value(field="f"), redis_value(json_field="a.b || a")]
CB_STALENESS = [
    cb_staleness(json_field="updated_at"),
    cb_staleness(field="updated_at", unit="ms"),
    cb_staleness(timestamp_key="cb:ts", unit="iso"),
]


@settings(max_examples=300)
@given(reply=REPLY)
def test_redis_value_judges_anything(reply: object) -> None:
    for dog in REDIS_VALUES:
        verdict = dog.judge(reply)
        assert_sound(verdict)
        # No reading, no judgement: anything but a number is UNKNOWN, never a BREACH.
        assert verdict.status is Status.UNKNOWN or verdict.value is not None


@given(number=st.floats(allow_nan=False, allow_infinity=False))
def test_redis_value_reads_any_finite_number_back(number: float) -> None:
    verdict = REDIS_VALUES[0].judge(repr(number).encode())
    assert verdict.value == number
    verdict = REDIS_VALUES[2].judge(json.dumps({"a": {"b": number}}).encode())
    assert verdict.value == number


@settings(max_examples=300)
@given(exists=st.one_of(st.integers(0, 2), REPLY), reply=REPLY, now=TIMES)
def test_cb_staleness_judges_anything(exists: object, reply: object, now: float) -> None:
    for dog in CB_STALENESS:
        verdict = dog.judge(exists, reply, now)
        assert_sound(verdict)
        if verdict.status in (Status.OK, Status.WARN):
            assert verdict.value is not None and verdict.value >= 0
        if verdict.status.is_failing and verdict.value is None:
            # Only "gone" breaches without a reading: no key (EXISTS 0), or no timestamp.
            assert (type(exists) is int and exists == 0) or reply is None


@pytest.mark.parametrize("exists", [False, 0.0, b"0", "0", None])
def test_cb_staleness_breaches_on_a_missing_key_only_for_a_real_exists_0(exists: object) -> None:
    # Before: False == 0 and 0.0 == 0, so an odd EXISTS reply read as "owner not running".
    verdict = CB_STALENESS[0].judge(exists, b'{"updated_at": 1795000000}', NOW)
    assert verdict.status is Status.UNKNOWN
    assert "unexpected EXISTS reply" in verdict.reason
    assert CB_STALENESS[0].judge(0, None, NOW).status is Status.BREACH


def tick_freshness(**overrides: Any) -> TickFreshness:
    fields: dict[str, Any] = {"name": "t", "kind": "tick_freshness", "key": "k", "breach": 10}
    fields["instruments"] = ["SPX"]
    return TickFreshness(TickFreshnessConfig.model_validate({**fields, **overrides}), CLIENT)


TICK_FRESHNESS = [
    tick_freshness(),
    tick_freshness(field="ts", unit="ms"),
    tick_freshness(json_field="a"),
    tick_freshness(json_field="max_by(a, &b).b"),  # a function: types can make it raise
]


@settings(max_examples=300)
@given(reply=REPLY, now=TIMES)
@example(reply=json.dumps({"a": [{"b": 1}, {"b": "2"}]}).encode(), now=NOW)  # TypeError inside
def test_tick_freshness_judges_anything(reply: object, now: float) -> None:
    """One instrument's bad data is that instrument's UNKNOWN: an exception would make the
    whole check UNKNOWN and blind the watchdog to the other instruments going stale."""
    for dog in TICK_FRESHNESS:
        verdict = judge_tick(dog, reply, now)
        assert isinstance(verdict, Verdict) and verdict.reason.startswith("SPX")
        if verdict.value is not None:
            assert math.isfinite(verdict.value) and verdict.value >= 0


@settings(max_examples=300)
@given(
    observations=st.lists(st.tuples(LOCK_PTTL, REPLY, TIMES), min_size=1, max_size=6),
    progress=st.booleans(),
)
def test_lock_ttl_judges_any_sequence_of_replies(
    observations: list[tuple[object, object, float]], progress: bool
) -> None:
    config = LockTtlConfig.model_validate(
        {"name": "l", "kind": "lock_ttl", "keys": ["k"], "max_ttl": 60, "max_hold": 300}
        | ({"min_ttl_progress": 10} if progress else {})
    )
    dog = LockTtl(config, CLIENT)
    for pttl, owner, now in observations:
        verdict = dog.judge("k", pttl, owner, now)
        assert_sound(verdict)
        if type(pttl) is int and pttl == -1 and isinstance(owner, bytes):  # Redis: an integer
            assert verdict.status is Status.BREACH
            assert "no expiry (PTTL -1)" in verdict.reason


@settings(max_examples=300)
@given(pttl=LOCK_PTTL, owner=REPLY)
def test_observe_reads_a_lock_or_says_why_not(pttl: object, owner: object) -> None:
    try:
        seen = observe(pttl, owner)
    except ValueError as exc:
        assert str(exc)
        # ...and the watchdog says UNKNOWN, never BREACH, for replies it cannot read.
        dog = LockTtl(LockTtlConfig(name="l", kind="lock_ttl", keys=["k"]), CLIENT)
        assert dog.judge("k", pttl, owner, NOW).status is Status.UNKNOWN
        return
    assert seen is None or (seen.pttl_ms >= -1 and isinstance(seen.owner, bytes))


@given(owner=st.binary(max_size=200))
def test_owner_values_are_never_shown_whole(owner: bytes) -> None:
    shown = show_owner(owner)
    assert len(shown) <= 2 * 4 * 12 + 3  # quoted, escaped, 12 characters at most
    text = owner.decode("utf-8", "replace")
    assert shown.endswith("…") == (len(text) > 12)


def judge_tick(dog: TickFreshness, reply: object, now: float) -> Verdict:
    """The verdict on the watchdog's first instrument for one reply (an OK one is built from
    the instant its age counts from, as a run builds it)."""
    outcome = dog.judge.judge_one(0, reply, now, None)
    if isinstance(outcome, Verdict):
        return outcome
    return dog.judge.ok_verdict(dog.subjects[0], outcome, now, None)

"""Arbitrary jmespath expressions over arbitrary JSON: a value or a ValueError, and for every
kind that reads a JSON field a verdict, never an exception, never a BREACH without a reading.

Expressions are built from jmespath's grammar (fields, indexes, slices, projections,
filters, pipes, comparisons, functions given the wrong types); documents mix every JSON
type, NaN and infinities, huge integers and deep nesting. Whatever the expression makes of
the document, a kind answers UNKNOWN (with the reason) unless a number or a timestamp was
actually read.
"""

from __future__ import annotations

import json
import math
from typing import Any

import httpx
import jmespath
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from jmespath.exceptions import JMESPathError
from redis.asyncio import Redis

from supervisor.actuators.http import Verifier, VerifyConfig
from supervisor.errors import ActuatorError
from supervisor.model import Status, Verdict
from supervisor.sources.http import HttpReply
from supervisor.watchdogs.cb_staleness import CbStaleness, CbStalenessConfig
from supervisor.watchdogs.http_health import HttpHealth, HttpHealthConfig
from supervisor.watchdogs.http_json import search
from supervisor.watchdogs.http_value import HttpValue, HttpValueConfig
from supervisor.watchdogs.json_field import json_field
from supervisor.watchdogs.margin import Margin, MarginConfig
from supervisor.watchdogs.redis_value import RedisValue, RedisValueConfig
from supervisor.watchdogs.tick_freshness import TickFreshness, TickFreshnessConfig

REDIS = Redis.from_url("redis://127.0.0.1:1/0")  # never used for I/O: judging is pure
HTTP = httpx.AsyncClient()
URL = "http://127.0.0.1:1/api"
NOW = 1_795_000_000.0
FIELDS = ["a", "b", "ts", "updated_at", "NAV", '"x y"']

LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**30, max_value=10**400),
    st.floats(),
    st.text(max_size=12),
    st.sampled_from(["1795000000", "1.795e9", "2026-11-22T09:30:00Z", "NaN", "-Infinity"]),
)
DOCUMENTS = st.recursive(
    LEAVES,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from([f.strip('"') for f in FIELDS]), children, max_size=4)
    ),
    max_leaves=25,
)
FUNCTIONS_OF_ONE = [
    "abs", "avg", "ceil", "floor", "keys", "length", "max", "min", "not_null", "reverse",
    "sort", "sum", "to_array", "to_number", "to_string", "type", "values",
]  # fmt: skip
ATOMS = st.one_of(
    st.sampled_from(FIELDS),
    st.sampled_from(["@", "`1`", "`null`", '`[1, "a"]`', "'ts'", "`1e400`", "`-0`"]),
)


def combine(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    pair = st.tuples(inner, inner)
    return st.one_of(
        st.tuples(inner, st.sampled_from(FIELDS)).map(lambda t: f"{t[0]}.{t[1]}"),
        st.tuples(inner, st.integers(-3, 3)).map(lambda t: f"{t[0]}[{t[1]}]"),
        inner.map(lambda e: f"{e}[*]"),
        inner.map(lambda e: f"{e}[]"),
        inner.map(lambda e: f"{e}[::-1]"),
        inner.map(lambda e: f"{e}[?@ > `1`]"),
        pair.map(lambda t: f"{t[0]} | {t[1]}"),
        pair.map(lambda t: f"{t[0]} || {t[1]}"),
        pair.map(lambda t: f"{t[0]} && {t[1]}"),
        pair.map(lambda t: f"{t[0]} < {t[1]}"),
        pair.map(lambda t: f"{t[0]} == {t[1]}"),
        inner.map(lambda e: f"!{e}"),
        pair.map(lambda t: f"[{t[0]}, {t[1]}]"),
        pair.map(lambda t: f"{{p: {t[0]}, q: {t[1]}}}"),
        st.tuples(st.sampled_from(FUNCTIONS_OF_ONE), inner).map(lambda t: f"{t[0]}({t[1]})"),
        pair.map(lambda t: f"merge({t[0]}, {t[1]})"),
        pair.map(lambda t: f"contains({t[0]}, {t[1]})"),
        pair.map(lambda t: f"starts_with({t[0]}, {t[1]})"),
        pair.map(lambda t: f"join({t[0]}, {t[1]})"),
        inner.map(lambda e: f"sort_by({e}, &a)"),
        inner.map(lambda e: f"max_by({e}, &ts)"),
        inner.map(lambda e: f"map(&a, {e})"),
    )


EXPRESSIONS = st.recursive(ATOMS, combine, max_leaves=6)


def compiles(expression: str) -> bool:
    try:
        jmespath.compile(expression)
    except JMESPathError:
        return False
    return True


def as_reply(document: Any) -> bytes:
    return json.dumps(document, allow_nan=True).encode()


def assert_reads_before_it_judges(verdict: Verdict) -> None:
    """A status other than UNKNOWN needs a reading (a finite value); never an exception."""
    assert isinstance(verdict.status, Status)
    assert verdict.reason
    if verdict.status is not Status.UNKNOWN:
        assert verdict.value is not None and math.isfinite(verdict.value), verdict


# Arithmetic on a JSON integer beyond any float raised OverflowError past every handler.
OVERFLOWS = [("avg(@)", [10**400]), ("sum(@)", [10**400, 1.5]), ("avg(a)", {"a": [10**309]})]


@settings(max_examples=400, deadline=None)
@given(expression=EXPRESSIONS, document=DOCUMENTS)
@example(expression=OVERFLOWS[0][0], document=OVERFLOWS[0][1])
@example(expression=OVERFLOWS[1][0], document=OVERFLOWS[1][1])
@example(expression=OVERFLOWS[2][0], document=OVERFLOWS[2][1])
def test_json_field_is_a_value_or_a_value_error(expression: str, document: Any) -> None:
    assume(compiles(expression))
    path = jmespath.compile(expression)
    try:
        value = json_field(path, expression, as_reply(document))
    except ValueError as exc:
        assert str(exc)
        return
    assert value is not None
    search(path, document)  # the HTTP kinds' search: None or a value, never raises


@settings(max_examples=300, deadline=None)
@given(expression=EXPRESSIONS, document=DOCUMENTS)
@example(expression=OVERFLOWS[0][0], document=OVERFLOWS[0][1])
def test_redis_kinds_reading_any_json_field_read_before_they_judge(
    expression: str, document: Any
) -> None:
    assume(compiles(expression))
    reply = as_reply(document)
    base = {"json_field": expression}
    value = RedisValue(
        RedisValueConfig.model_validate(
            {"name": "v", "kind": "redis_value", "key": "k", "breach": 1, **base}
        ),
        REDIS,
    )
    assert_reads_before_it_judges(value.judge(reply))
    staleness = CbStaleness(
        CbStalenessConfig.model_validate(
            {"name": "cb", "kind": "cb_staleness", "key": "cb", **base}
        ),
        REDIS,
    )
    assert_reads_before_it_judges(staleness.judge(1, reply, NOW))
    ticks = TickFreshness(
        TickFreshnessConfig.model_validate(
            {"name": "t", "kind": "tick_freshness", "key": "k", "instruments": ["I"]}
            | {"breach": "15s", **base}
        ),
        REDIS,
    )
    assert_reads_before_it_judges(judge_tick(ticks, reply, NOW))


@settings(max_examples=300, deadline=None)
@given(expression=EXPRESSIONS, document=DOCUMENTS, status=st.sampled_from([200, 503]))
@example(expression=OVERFLOWS[1][0], document=OVERFLOWS[1][1], status=200)
def test_http_kinds_reading_any_path_read_before_they_judge(
    expression: str, document: Any, status: int
) -> None:
    assume(compiles(expression))
    reply = HttpReply(status, 0.01, as_reply(document))
    value = HttpValue(
        HttpValueConfig.model_validate(
            {"name": "v", "kind": "http_value", "url": URL, "path": expression, "breach": 1}
        ),
        HTTP,
    )
    assert_reads_before_it_judges(value.judge(document))
    margin = Margin(
        MarginConfig.model_validate(
            {"name": "m", "kind": "margin", "url": URL, "utilization": expression, "breach": 0.5}
        ),
        HTTP,
        None,
    )
    assert_reads_before_it_judges(margin.judge(margin.fields_of(document)))
    health = HttpHealth(
        HttpHealthConfig.model_validate(
            {"name": "h", "kind": "http_health", "url": URL, "expect": expression}
        ),
        HTTP,
    )
    verdict = health.judge(reply)  # an expectation not met is this kind's BREACH, by design
    assert verdict.status is Status.OK or verdict.reason.startswith("/api: ")
    if verdict.status is Status.OK:
        assert status == 200 and search(jmespath.compile(expression), document) is True


@settings(max_examples=300, deadline=None)
@given(expression=EXPRESSIONS, document=DOCUMENTS)
@example(expression=OVERFLOWS[0][0], document=OVERFLOWS[0][1])
def test_a_kill_switch_verify_expectation_says_yes_no_or_cannot_say(
    expression: str, document: Any
) -> None:
    # An exception other than ActuatorError was logged as a bug by the daemon.
    assume(compiles(expression))
    verifier = Verifier(VerifyConfig(url=URL, expect=expression), timeout_s=1.0)
    try:
        assert verifier.holds(document) in (True, False)
    except ActuatorError as exc:
        assert f"{expression!r} failed on the answer" in str(exc)


def judge_tick(dog: TickFreshness, reply: object, now: float) -> Verdict:
    """The verdict on the watchdog's first instrument for one reply (an OK one is built from
    the instant its age counts from, as a run builds it)."""
    outcome = dog.judge.judge_one(0, reply, now, None)
    if isinstance(outcome, Verdict):
        return outcome
    return dog.judge.ok_verdict(dog.subjects[0], outcome, now, None)

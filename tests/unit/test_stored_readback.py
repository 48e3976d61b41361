"""Every reader of what the daemon stored, fed anything (issue 16): JSON of any shape and depth,
integers too large for a float, NaN and infinities, deep nesting, bytes that are not UTF-8.
None raises anything but Unreadable (a ValueError), and what one returns is a valid value.
The state files (engaged.json, pending-actions.json, the audit outbox) are read from a real
directory; the Redis readers are in tests/integration/test_stored_readback_redis.py."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from supervisor import stored
from supervisor.cli_tables import _verdicts
from supervisor.latch import ENGAGED_FILE, Latch, LatchStore
from supervisor.model import Status, TradingState
from supervisor.pending import PENDING_FILE, Order, PendingActions
from supervisor.publish.audit.event import AuditEvent, event_from_stream, parse_lines

EXAMPLES = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

huge_ints = st.integers(min_value=300, max_value=4000).map(lambda n: 10**n)
numbers = st.one_of(
    st.integers(),
    huge_ints,
    huge_ints.map(lambda n: -n),
    st.floats(allow_nan=True, allow_infinity=True),
    st.just(2**63 - 1),
    st.just(2**63),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=20))
any_json = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


def deep(depth: int) -> str:
    return "[" * depth + "]" * depth


def dumped(value: Any) -> str:
    return json.dumps(value)  # NaN and Infinity come out as the tokens Python reads back


# Near misses: the right keys with anything as values, so validation is what is exercised.
latch_like = st.fixed_dictionaries(
    {
        "level": st.one_of(st.sampled_from([s.name for s in TradingState]), any_json),
        "reason": st.one_of(st.text(max_size=10), any_json),
        "at": st.one_of(numbers, any_json),
    },
    optional={"watchdog": any_json, "seq": st.one_of(numbers, any_json)},
)
decision_like = st.fixed_dictionaries(
    {
        "watchdog": st.one_of(st.just("w1"), any_json),
        "severity": st.one_of(st.sampled_from([s.name for s in Status]), any_json),
        "actuators": st.one_of(st.just(["breaker"]), any_json),
        "reason": st.one_of(st.just("r"), any_json),
        "incident_id": st.one_of(st.just("i"), any_json),
        "at": st.one_of(numbers, any_json),
    },
    optional={"fencing_token": st.one_of(numbers, any_json), "origin": any_json},
)
order_like = st.fixed_dictionaries(
    {"actuator": st.one_of(st.just("breaker"), any_json), "decision": decision_like},
    optional={"after_reset": st.one_of(numbers, any_json)},
)
stored_text = st.one_of(
    any_json.map(dumped),
    latch_like.map(dumped),
    order_like.map(dumped),
    st.integers(min_value=1_000, max_value=200_000).map(deep),
    st.integers(min_value=1_000, max_value=50_000).map(lambda n: '{"a":' * n + "1" + "}" * n),
    st.text(max_size=40),
)
stored_bytes = st.one_of(stored_text.map(str.encode), st.binary(max_size=40))


def valid_latch(latch: Latch) -> None:
    assert isinstance(latch.level, TradingState) and isinstance(latch.reason, str)
    assert math.isfinite(latch.at) and isinstance(latch.watchdog, str)
    assert latch.seq is None or 0 <= latch.seq <= stored.MAX_COUNTER
    Latch.from_json(latch.to_json())  # what is kept can be written and read again


def valid_order(found: Order) -> None:
    decision = found.decision
    assert math.isfinite(decision.at) and isinstance(decision.severity, Status)
    assert all(isinstance(name, str) for name in decision.actuators)
    assert found.after_reset is None or 0 <= found.after_reset <= stored.MAX_COUNTER
    Order.from_dict(json.loads(json.dumps(found.to_dict())))


@EXAMPLES
@given(raw=stored_bytes)
def test_decode_json_returns_shallow_json_or_says_unreadable(raw: bytes) -> None:
    try:
        value = stored.decode_json(raw)
    except stored.Unreadable:
        return
    json.dumps(value)  # shallow enough to be written again without a RecursionError


@EXAMPLES
@given(raw=stored_bytes)
def test_a_latch_read_back_is_valid_or_unreadable(raw: bytes) -> None:
    try:
        latch = Latch.from_json(raw)
    except stored.Unreadable:
        return
    valid_latch(latch)


@EXAMPLES
@given(raw=stored_bytes)
def test_an_order_read_back_is_valid_or_unreadable(raw: bytes) -> None:
    try:
        found = Order.from_dict(stored.decode_json(raw))
    except stored.Unreadable:
        return
    valid_order(found)


@EXAMPLES
@given(raw=stored_bytes)
def test_an_audit_line_read_back_is_an_event_or_rejected(raw: bytes) -> None:
    events, rejected = parse_lines([raw])
    assert len(events) + len(rejected) == 1
    for event, _line in events:
        assert math.isfinite(event.at)
        AuditEvent.from_json(event.to_json())


@EXAMPLES
@given(detail=stored_text)
def test_a_stream_entry_read_back_is_an_event_or_a_value_error(detail: str) -> None:
    fields = {b"id": b"6f1c3f0e-8a59-4c6b-9a43-1d0f3d8f7a10", b"at": b"1.5", b"kind": b"state"}
    try:
        event_from_stream({**fields, b"detail": detail.encode()})
    except ValueError:
        return


@EXAMPLES
@given(verdicts=stored_text)
def test_status_reads_an_instance_record_verdicts_or_shows_nothing(verdicts: str) -> None:
    found = _verdicts({"verdicts": verdicts})
    assert found is None or isinstance(found, dict)


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path


def fresh(state_dir: Path, name: str) -> Path:
    for old in state_dir.iterdir():
        old.unlink()
    return state_dir / name


@EXAMPLES
@given(
    content=st.one_of(
        stored_bytes,
        st.dictionaries(st.text(max_size=8), st.one_of(latch_like, any_json), max_size=4)
        .map(dumped)
        .map(str.encode),
    )
)
def test_engaged_json_never_stops_a_start(state_dir: Path, content: bytes) -> None:
    path = fresh(state_dir, ENGAGED_FILE)
    path.write_bytes(content)
    store = LatchStore(state_dir, redis=None, namespace="sup")  # type: ignore[arg-type]
    latches = store.load_file()
    for latch in latches.values():
        valid_latch(latch)
    aside = [p for p in state_dir.iterdir() if ".unreadable-" in p.name]
    if aside:  # what could be read was written back; what could not is kept for a person
        assert aside[0].read_bytes() == content
        assert store.load_file() == latches


@EXAMPLES
@given(
    content=st.one_of(
        stored_bytes,
        st.lists(st.one_of(order_like, any_json), max_size=4).map(dumped).map(str.encode),
    )
)
def test_pending_actions_never_stop_a_start(state_dir: Path, content: bytes) -> None:
    path = fresh(state_dir, PENDING_FILE)
    path.write_bytes(content)
    orders = PendingActions(state_dir).load()
    for found in orders:
        valid_order(found)
    aside = [p for p in state_dir.iterdir() if ".unreadable-" in p.name]
    if aside:
        assert aside[0].read_bytes() == content
        assert PendingActions(state_dir).load() == orders


def test_an_unreadable_entry_is_said_once_and_counted_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sightings = stored.Sightings()
    for _ in range(5):
        sightings.report("engaged", "sup:engaged x", b"{", "not JSON", "ignored")
    sightings.report("engaged", "sup:engaged x", b"{}", "changed", "ignored")  # new content
    assert caplog.text.count("unreadable engaged entry") == 2
    assert sightings.counts() == {"engaged": 2}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"7", 7),
        (b"9223372036854775807", 2**63 - 1),
        (b"9223372036854775808", None),
        (b"1e3", None),
        (b"-1", None),
        (b"\xff", None),
        (b"\xd9\xa3", None),  # a digit, but not an ASCII one
        (None, None),
    ],
)
def test_a_counter_is_incr_decimal_text_or_nothing(raw: bytes | None, expected: int | None) -> None:
    assert stored.counter_text(raw) == expected

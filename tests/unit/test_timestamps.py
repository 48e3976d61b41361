"""parse_timestamp / parse_stream_id: epoch seconds or a ValueError, never anything else."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import get_args

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from supervisor.timestamps import TimestampUnit, parse_stream_id, parse_timestamp, quick_seconds

UNITS: tuple[TimestampUnit, ...] = get_args(TimestampUnit)
EPOCH_UNITS: tuple[TimestampUnit, ...] = ("s", "ms", "us", "ns")
SCALE: dict[str, int] = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}
EPOCH_S = st.integers(min_value=10**9, max_value=4 * 10**9)
EPOCH_US = st.integers(min_value=10**15, max_value=4 * 10**15)
ANY_RAW = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=80),
    st.binary(max_size=80),
    st.text(alphabet="0123456789-+.:eETZz ", max_size=40),
)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def close_to(actual: float, expected: float) -> bool:
    """Within 10 us: tighter than 1e-6 relative for any epoch second after 2001."""
    return math.isclose(actual, expected, rel_tol=0, abs_tol=1e-5)


def instant(epoch_us: int) -> datetime:
    return EPOCH + timedelta(microseconds=epoch_us)


def assert_finite_or_value_error(parse: Callable[..., float], *args: object) -> None:
    try:
        result = parse(*args)
    except ValueError as exc:
        assert str(exc)
        return
    assert isinstance(result, float)
    assert math.isfinite(result)


@settings(max_examples=200)
@given(ANY_RAW, st.sampled_from(UNITS))
def test_parse_timestamp_returns_a_finite_float_or_raises_value_error(
    raw: object, unit: TimestampUnit
) -> None:
    assert_finite_or_value_error(parse_timestamp, raw, unit)


@settings(max_examples=200)
@given(ANY_RAW)
def test_parse_stream_id_returns_a_finite_float_or_raises_value_error(raw: object) -> None:
    assert_finite_or_value_error(parse_stream_id, raw)


@settings(max_examples=200)
@given(EPOCH_S, st.sampled_from(EPOCH_UNITS), st.sampled_from(["int", "str", "bytes"]))
def test_integer_epochs_round_trip_in_every_unit(
    seconds: int, unit: TimestampUnit, form: str
) -> None:
    number = seconds * SCALE[unit]
    raw = {"int": number, "str": str(number), "bytes": str(number).encode()}[form]
    assert close_to(parse_timestamp(raw), seconds)
    assert close_to(parse_timestamp(raw, unit), seconds)


@settings(max_examples=200)
@given(EPOCH_US)
def test_float_seconds_round_trip(epoch_us: int) -> None:
    seconds = epoch_us / 1e6
    assert close_to(parse_timestamp(seconds), seconds)
    assert close_to(parse_timestamp(repr(seconds)), seconds)


@settings(max_examples=200)
@given(EPOCH_US, st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59))
def test_iso_8601_round_trips_with_any_offset(epoch_us: int, offset_min: int) -> None:
    moment = instant(epoch_us)
    local = moment.astimezone(timezone(timedelta(minutes=offset_min)))
    texts = [
        moment.isoformat().replace("+00:00", "Z"),
        moment.isoformat(),
        local.isoformat(),
        moment.replace(tzinfo=None).isoformat(),  # naive means UTC
    ]
    for text in texts:
        assert close_to(parse_timestamp(text), epoch_us / 1e6), text
        assert close_to(parse_timestamp(text, "iso"), epoch_us / 1e6), text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (1_700_000_000, 1_700_000_000.0),
        (1_700_000_000_123, 1_700_000_000.123),
        (1_700_000_000_123_456, 1_700_000_000.123456),
        (1_700_000_000_123_456_789, 1_700_000_000.123456789),
        ("1700000000.5", 1_700_000_000.5),
        (b"1700000000123", 1_700_000_000.123),
        (99_999_999_999, 99_999_999_999.0),  # the top of the seconds band (year 5138)
        (100_000_000_000, 100_000_000.0),  # the bottom of the milliseconds band
        (99_999_999_999_999, 99_999_999_999.999),
        (100_000_000_000_000, 100_000_000.0),  # microseconds
        (100_000_000_000_000_000, 100_000_000.0),  # nanoseconds
    ],
)
def test_auto_detects_the_unit_by_magnitude(raw: object, expected: float) -> None:
    assert close_to(parse_timestamp(raw), expected)


def test_a_naive_iso_time_is_utc_whatever_the_local_zone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        assert parse_timestamp("2026-03-09T13:30:00") == 1_773_063_000.0
    finally:
        monkeypatch.undo()
        time.tzset()


@pytest.mark.parametrize(
    ("raw", "unit", "expected"),
    [
        ("1700000000", "s", 1_700_000_000.0),
        ("1700000000", "ms", 1_700_000.0),
        ("1700000000", "us", 1_700.0),
        ("1700000000", "ns", 1.7),
        (1_700_000_000_000, "s", 1_700_000_000_000.0),
    ],
)
def test_an_explicit_unit_overrides_magnitude(
    raw: object, unit: TimestampUnit, expected: float
) -> None:
    assert parse_timestamp(raw, unit) == pytest.approx(expected)


@settings(max_examples=200)
@given(st.integers(min_value=10**12, max_value=4 * 10**12), st.integers(0, 10**6))
def test_stream_ids_give_their_millisecond_part(ms: int, seq: int) -> None:
    assert close_to(parse_stream_id(f"{ms}-{seq}"), ms / 1e3)
    assert close_to(parse_stream_id(f"{ms}-{seq}".encode()), ms / 1e3)
    assert close_to(parse_timestamp(f"{ms}-{seq}"), ms / 1e3)


@pytest.mark.parametrize("raw", ["1700000000123", "abc-1", "1-", "-1", "1-2-3", "1.5-0", "", None])
def test_malformed_stream_ids_are_rejected(raw: object) -> None:
    with pytest.raises(ValueError, match=r"stream entry id|empty|timestamp"):
        parse_stream_id(raw)


@pytest.mark.parametrize(
    ("raw", "unit", "message"),
    [
        (math.nan, "auto", "not a timestamp"),
        (math.inf, "auto", "not a timestamp"),
        (-math.inf, "auto", "timestamp"),
        ("nan", "s", "not a timestamp"),
        (-1_700_000_000, "auto", "positive"),
        ("-1700000000", "ms", "positive"),
        (0, "auto", "positive"),
        ("0.0", "s", "positive"),
        (1e20, "auto", "too large"),
        ("", "auto", "empty"),
        ("   ", "auto", "empty"),
        (b"", "auto", "empty"),
        ("1" * 65, "auto", "too long"),
        (b"\xff\xfe1700000000", "auto", "UTF-8"),
        (None, "auto", "not a timestamp"),
        (True, "auto", "not a timestamp"),
        ([1_700_000_000], "auto", "not a timestamp"),
        ("2026-13-01T00:00:00Z", "auto", "ISO-8601"),
        ("1700000000", "iso", "ISO-8601"),
        ("yesterday", "auto", "not a timestamp"),
    ],
)
def test_bad_values_raise_value_error_with_a_message(
    raw: object, unit: TimestampUnit, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        parse_timestamp(raw, unit)


# --- hostile text shaped like timestamps ----------------------------------------------------

ISO_LIKE = st.builds(
    lambda y, mo, d, sep, h, mi, s, frac, off: (
        f"{y}-{mo:02d}-{d:02d}{sep}{h:02d}:{mi:02d}:{s:02d}{frac}{off}"
    ),
    st.sampled_from(["0000", "0001", "1969", "2026", "9999", "10000", "+2026", "99999999"]),
    st.integers(0, 13),
    st.integers(0, 32),
    st.sampled_from(["T", "t", " ", "_"]),
    st.integers(0, 25),
    st.integers(0, 61),
    st.integers(0, 61),
    st.sampled_from(["", ".5", ".123456", ".1234567890", ","]),
    st.sampled_from(["", "Z", "z", "+00:00", "-23:59", "+23:59:59.999999", "+24:00", "+99:99"]),
)
NUMBER_LIKE = st.from_regex(r"[+-]?\d{0,25}(\.\d{0,25})?([eE][+-]?\d{1,4})?", fullmatch=True)


@settings(max_examples=400)
@given(st.one_of(ISO_LIKE, NUMBER_LIKE), st.sampled_from(UNITS))
def test_text_shaped_like_a_timestamp_is_epoch_seconds_or_a_value_error(
    text: str, unit: TimestampUnit
) -> None:
    # Years 1 and 9999 with an offset cross the ends of datetime's range: never OverflowError.
    assert_finite_or_value_error(parse_timestamp, text, unit)
    assert_finite_or_value_error(parse_timestamp, text.encode(), unit)


@pytest.mark.parametrize(
    "text", ["0001-01-01T00:00:00+23:59", "9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00"]
)
def test_iso_times_at_the_ends_of_the_calendar_are_a_value_error_or_a_number(text: str) -> None:
    assert_finite_or_value_error(parse_timestamp, text, "iso")


NUMBER_LIKE = st.one_of(
    st.binary(max_size=80),
    st.text(alphabet="0123456789-+._eE infatyINFATY\t\n\x0b\x0c\r\x1c", max_size=70).map(
        str.encode
    ),
    st.floats(allow_nan=True, allow_infinity=True).map(lambda f: repr(f).encode()),
    st.integers(min_value=-(10**22), max_value=10**22).map(lambda i: str(i).encode()),
    st.builds(lambda s, ms: f"{s}.{ms}".encode(), EPOCH_S, st.integers(0, 999)),
)


@settings(max_examples=2000)
@given(NUMBER_LIKE, st.sampled_from(UNITS))
def test_the_quick_parse_agrees_with_the_full_one_whenever_it_answers(
    raw: bytes, unit: TimestampUnit
) -> None:
    quick = quick_seconds(raw, unit)
    if math.isnan(quick):
        return  # the full parse decides, with its reason
    assert parse_timestamp(raw, unit) == quick


@pytest.mark.parametrize(
    "raw", [b"1700000000", b"1700000000.25", b"1700000000123", b"1700000000123456", b" 17e8 "]
)
def test_the_quick_parse_takes_the_common_epochs(raw: bytes) -> None:
    assert quick_seconds(raw) == parse_timestamp(raw)


@pytest.mark.parametrize(
    "raw", [b"1_700_000_000", b"inf", b"nan", b"-5", b"0", b"2024-01-01T00:00:00Z", b"", b"9" * 70]
)
def test_the_quick_parse_leaves_everything_else_to_the_full_one(raw: bytes) -> None:
    assert math.isnan(quick_seconds(raw))

"""parse_duration / format_duration."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from supervisor.quantities import format_duration, format_value, parse_duration

SUFFIX_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [
        ("250ms", 0.25),
        ("15s", 15.0),
        ("5m", 300.0),
        ("1h", 3600.0),
        ("1.5h", 5400.0),
        (" 15 s ", 15.0),
        ("30", 30.0),
        ("0", 0.0),
        (2, 2.0),
        (0.5, 0.5),
    ],
)
def test_parse_duration_accepts_units_and_numbers(raw: object, seconds: float) -> None:
    assert parse_duration(raw) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "raw",
    ["", "soon", "15 sec", "15S", "1d", "-1s", "1e3s", ".5s", "s", "15s5", -1, -0.5, None, [15]],
)
def test_parse_duration_rejects_bad_input(raw: object) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(raw)


@pytest.mark.parametrize("raw", [True, False])
def test_parse_duration_rejects_bools(raw: bool) -> None:
    with pytest.raises(ValueError, match="number of seconds"):
        parse_duration(raw)


@pytest.mark.parametrize("raw", [math.nan, math.inf, -math.inf])
def test_parse_duration_rejects_non_finite_numbers(raw: float) -> None:
    with pytest.raises(ValueError, match="finite"):
        parse_duration(raw)


def test_parse_duration_rejects_an_integer_too_large_for_a_float() -> None:
    # TOML integers are unbounded in tomllib; this must stay a ValueError (-> ConfigError).
    with pytest.raises(ValueError):
        parse_duration(10**400)


@settings(max_examples=200)
@given(st.integers(0, 10**6), st.sampled_from(sorted(SUFFIX_SECONDS)))
def test_parse_duration_scales_by_its_suffix(amount: int, suffix: str) -> None:
    assert parse_duration(f"{amount}{suffix}") == pytest.approx(amount * SUFFIX_SECONDS[suffix])


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.25, "250ms"),
        (0.0, "0ms"),
        (2.004, "2.00s"),
        (15.0, "15s"),
        (17.23, "17.2s"),
        (90.0, "90s"),
        (150.0, "2.5m"),
        (5400.0, "90.0m"),
        (7200.0, "2.0h"),
        (36000.0, "10.0h"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@settings(max_examples=200)
@given(st.floats(min_value=0, max_value=1e7, allow_nan=False))
def test_format_duration_reads_back_close_to_the_value(seconds: float) -> None:
    text = format_duration(seconds)
    assert parse_duration(text) == pytest.approx(seconds, rel=0.05, abs=0.001)


@pytest.mark.parametrize(
    ("number", "unit", "shown"),
    [
        (0.42, "ratio", "0.420"),
        (3.0, "rows", "3 rows"),
        (17.23, "s", "17.2s"),
        (-1.0, "s", "-1s"),
        (None, "s", "-"),
        (12.5, "", "12.5"),
    ],
)
def test_format_value_shows_the_unit(number: float | None, unit: str, shown: str) -> None:
    assert format_value(number, unit) == shown

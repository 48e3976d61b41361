"""Turn whatever a producer wrote into epoch seconds, or a ValueError saying why not.

Accepted: epoch seconds / ms / us / ns (detected by magnitude or declared), ISO-8601 (a
missing offset means UTC), and Redis stream entry ids ("<ms>-<seq>"). Pure: no clock here.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Literal

TimestampUnit = Literal["auto", "s", "ms", "us", "ns", "iso"]

UNIT_DIVISORS = {"s": 1.0, "ms": 1e3, "us": 1e6, "ns": 1e9}
# Magnitude bands for "auto": seconds stay below 1e11 until the year 5138, so each band is
# unambiguous for any time after 1973 (ms >= 1e11, us >= 1e14, ns >= 1e17).
_AUTO_BANDS: tuple[tuple[float, TimestampUnit], ...] = (
    (1e11, "s"),
    (1e14, "ms"),
    (1e17, "us"),
    (1e20, "ns"),
)
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_STREAM_ID = re.compile(r"^(\d{1,20})-\d{1,20}$")
MAX_TEXT_LENGTH = 64


def parse_timestamp(raw: object, unit: TimestampUnit = "auto") -> float:
    """Epoch seconds from `raw` (bytes, str, int or float)."""
    text = _as_text(raw)
    if unit == "iso":
        return _parse_iso(text)
    if _NUMBER.match(text):
        return _epoch_seconds(float(text), unit)
    if unit == "auto" and (match := _STREAM_ID.match(text)):
        return int(match.group(1)) / 1e3
    if unit == "auto" and ("T" in text or "-" in text):
        return _parse_iso(text)
    raise ValueError(f"not a timestamp: {_preview(text)}")


def quick_seconds(raw: object, unit: TimestampUnit = "auto") -> float:
    """`parse_timestamp` for the common case, cheaply: bytes holding a positive decimal
    number of epoch seconds, ms, us or ns. NaN for anything else, which `parse_timestamp`
    then judges with its reason (ISO-8601, garbage, `inf`, `1_000`, too long): whenever
    this gives a number, `parse_timestamp` gives the same (tests/unit/test_timestamps.py)."""
    if type(raw) is not bytes or len(raw) > MAX_TEXT_LENGTH or b"_" in raw or unit == "iso":
        return math.nan
    try:
        number = float(raw)
    except ValueError:
        return math.nan
    if not 0 < number < 1e20:  # also NaN and infinities
        return math.nan
    if unit != "auto":
        return number / UNIT_DIVISORS[unit]
    if number < 1e11:  # the bands of _AUTO_BANDS, unrolled: this runs once per instrument
        return number
    if number < 1e14:
        return number / 1e3
    return number / 1e6 if number < 1e17 else number / 1e9


def parse_stream_id(raw: object) -> float:
    """Epoch seconds from a Redis stream entry id such as b"1700000000123-0"."""
    text = _as_text(raw)
    match = _STREAM_ID.match(text)
    if not match:
        raise ValueError(f"not a stream entry id: {_preview(text)}")
    return int(match.group(1)) / 1e3


def _as_text(raw: object) -> str:
    if isinstance(raw, bool) or raw is None:
        raise ValueError(f"not a timestamp: {raw!r}")
    if isinstance(raw, int | float):
        return repr(raw)
    if isinstance(raw, bytes | bytearray):
        try:
            raw = bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError("timestamp is not valid UTF-8") from None
    if not isinstance(raw, str):
        raise ValueError(f"not a timestamp: {type(raw).__name__}")
    text = raw.strip()
    if not text:
        raise ValueError("timestamp is empty")
    if len(text) > MAX_TEXT_LENGTH:
        raise ValueError(f"timestamp too long ({len(text)} characters)")
    return text


def _epoch_seconds(number: float, unit: TimestampUnit) -> float:
    if not math.isfinite(number) or number <= 0:
        raise ValueError(f"timestamp must be a positive epoch time, got {number!r}")
    if unit == "auto":
        unit = next((u for limit, u in _AUTO_BANDS if number < limit), "ns")
        if number >= _AUTO_BANDS[-1][0]:
            raise ValueError(f"timestamp {number:.6g} is too large for any epoch unit")
    return number / UNIT_DIVISORS[unit]


def _parse_iso(text: str) -> float:
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"not an ISO-8601 timestamp: {_preview(text)}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.timestamp()
    except (OverflowError, OSError, ValueError):
        raise ValueError(f"ISO-8601 timestamp out of range: {_preview(text)}") from None


def _preview(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:37] + "...")

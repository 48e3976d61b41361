"""Durations at the config edge: "250ms", "15s", "5m", "1h" or a number of seconds."""

from __future__ import annotations

import math
import re

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_SECONDS_PER_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(value: object) -> float:
    """Return seconds as a float; raise ValueError with a readable message otherwise."""
    if isinstance(value, bool):
        raise ValueError("a duration must be a number of seconds or a string like '15s'")
    if isinstance(value, int | float):
        seconds = _as_float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match.group(1)) * _SECONDS_PER_UNIT[match.group(2)]
    else:
        raise ValueError(f"invalid duration {value!r}: use '250ms', '15s', '5m', '1h' or seconds")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"invalid duration {value!r}: must be a finite, non-negative time")
    return seconds


def _as_float(value: float) -> float:
    try:
        return float(value)
    except OverflowError:  # TOML integers are unbounded
        raise ValueError(f"invalid duration {value!r:.20}...: far too large") from None


def format_duration(seconds: float) -> str:
    """A readable form for reasons: 0.25 -> '250ms', 2.004 -> '2.00s', 17.23 -> '17.2s'.

    Thresholds that are whole numbers print as such ('15s'), so "15.0s > 15s" reads right.
    """
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 120 and seconds == int(seconds):
        return f"{seconds:.0f}s"
    if seconds < 10:
        return f"{seconds:.2f}s"
    if seconds < 120:
        return f"{seconds:.1f}s"
    if seconds < 7200:
        return f"{seconds / 60:.1f}m"
    return f"{seconds / 3600:.1f}h"


def format_value(number: float | None, unit: str) -> str:
    """A measured value with its unit: seconds as durations, ratios with 3 decimals."""
    if number is None:
        return "-"
    if unit == "s":
        return format_duration(number) if number >= 0 else f"{number:g}s"
    if unit == "ratio":
        return f"{number:.3f}"
    return f"{number:g} {unit}".rstrip()

"""Numbers from whatever a source returned, or a ValueError saying why not. Pure.

Accepts ints, floats, Decimals and numeric text (bytes or str, as OANDA and Redis return
them). Refuses bools (True is not 1 margin), NaN, infinities, empty and over-long text.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal

_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
MAX_TEXT_LENGTH = 64


def parse_number(raw: object) -> float:
    if isinstance(raw, bool) or raw is None:
        raise ValueError(f"not a number: {raw!r}")
    if isinstance(raw, int | float | Decimal):
        try:
            return _finite(float(raw))
        except OverflowError:  # a Python int beyond any float
            raise ValueError("number too large") from None
    if isinstance(raw, bytes | bytearray):
        try:
            raw = bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError("value is not valid UTF-8") from None
    if not isinstance(raw, str):
        raise ValueError(f"not a number: a {type(raw).__name__}")
    text = raw.strip()
    if not text:
        raise ValueError("value is empty")
    if len(text) > MAX_TEXT_LENGTH or not _NUMBER.match(text):
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise ValueError(f"not a number: {shown!r}")
    return _finite(float(text))


def _finite(number: float) -> float:
    if not math.isfinite(number):
        raise ValueError(f"not a finite number: {number!r}")
    return number

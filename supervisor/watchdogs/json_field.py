"""A field of a JSON value read from Redis, or a ValueError saying why not. Pure.

Shared by the Redis kinds that read a `json_field` (tick_freshness, cb_staleness, redis_value).
"""

from __future__ import annotations

import json

from jmespath.parser import ParsedResult

from supervisor.errors import EXPRESSION_FAILURES


class NoField(ValueError):
    """The document is fine, but nothing is at the expression."""


def json_field(path: ParsedResult, expression: str, reply: object) -> object:
    """The value at `path` in the JSON document `reply`; ValueError if none is there.

    Not JSON (bad UTF-8, bad syntax, absurd nesting) and an expression failing on this
    document (a function given the wrong type) are ValueErrors too, never other exceptions.
    """
    try:
        document = json.loads(reply)  # type: ignore[arg-type]
    except (TypeError, ValueError, RecursionError):
        raise ValueError("value is not valid JSON") from None
    if not isinstance(document, dict | list):
        raise ValueError(f"JSON is a {type(document).__name__}, not an object")
    try:
        value = path.search(document)
    except EXPRESSION_FAILURES as exc:
        raise ValueError(f"jmespath {expression!r} failed: {type(exc).__name__}") from None
    if value is None:
        raise NoField(f"JSON has no {expression!r}")
    return value

"""What every `[actuators.NAME]` action has (its level and what to engage when it fails), and
the check of `{placeholder}` names in request body templates (http actions, the deadman).

Each kind's own config class is next to its implementation (supervisor/actuators/<kind>.py).
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import AfterValidator

from supervisor.config.types import Level, Strict


class ActuatorBase(Strict):
    kind: str
    level: Level
    on_failure: list[str] = []  # engaged at once when this one fails or cannot be verified


def check_json_values(body: dict[str, Any]) -> dict[str, Any]:
    """A body template must be sendable as JSON: TOML dates and times have no JSON form (the
    request would fail when it matters most) and NaN/inf are not JSON numbers, so both are
    refused here, naming where they are. (null only comes from a JSON environment override.)"""
    stack: list[tuple[str, Any]] = [("", body)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, dict):
            stack.extend((f"{where}.{key}" if where else key, value) for key, value in item.items())
        elif isinstance(item, list):
            stack.extend((f"{where}[{index}]", value) for index, value in enumerate(item))
        elif isinstance(item, float) and not math.isfinite(item):
            raise ValueError(f"{where}: NaN and infinity are not JSON numbers")
        elif item is not None and not isinstance(item, str | int | float | bool):
            raise ValueError(
                f"{where}: a TOML {type(item).__name__} has no JSON form; write it as a string"
            )
    return body


JsonBody = Annotated[dict[str, Any], AfterValidator(check_json_values)]


def check_placeholders(node: Any, known: tuple[str, ...]) -> None:
    """A `{name}` in a body template that we would not fill is a typo: refuse it here
    rather than send it literally to a kill endpoint. Other braces ("{}", "{ x }") pass."""
    found: set[str] = set()
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            found.update(re.findall(r"\{([A-Za-z_][A-Za-z0-9_]*)\}", item))
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    unknown = sorted(found - set(known))
    if unknown:
        raise ValueError(
            f"json: unknown placeholder(s) {', '.join('{' + n + '}' for n in unknown)};"
            f" known: {', '.join('{' + n + '}' for n in known)}"
        )

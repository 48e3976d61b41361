"""Plain-text tables for `check` and `status`, readable at 03:00 in a terminal.

Every cell and field is outside text (a reason, a value read back from Redis): each is one
safe line (supervisor/text.py), so no escape sequence reaches the terminal, no newline breaks
the table, and a 10 kB reason does not bury it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

from supervisor.model import Verdict
from supervisor.quantities import format_duration, format_value
from supervisor.text import CELL_MAX_CHARS, STATUS_LINE_MAX_CHARS, safe_line


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[cell(c) for c in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for row in cells:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


def cell(value: object) -> str:
    return safe_line(str(value), CELL_MAX_CHARS)


def render_verdicts(verdicts: Sequence[Verdict]) -> str:
    rows = [
        [
            v.watchdog,
            v.subject,
            v.status.name,
            format_value(v.value, v.unit),
            format_value(v.threshold, v.unit),
            v.reason,
        ]
        for v in verdicts
    ]
    return table(["WATCHDOG", "SUBJECT", "STATUS", "VALUE", "THRESHOLD", "REASON"], rows)


def render_status(published: Mapping[str, object]) -> str:
    if "error" in published:
        return f"cannot read the published state: {cell(published['error'])}"
    published_state = published.get("state")
    state = published_state if isinstance(published_state, dict) else {}
    heartbeat = published.get("heartbeat_at")
    now = time.time()
    if isinstance(heartbeat, float):
        alive = f"alive (heartbeat {format_duration(max(0.0, now - heartbeat))} ago)"
    elif published.get("alive"):
        alive = "alive? (a heartbeat is there, but it is not a time)"
    else:
        alive = "NO LIVE SUPERVISOR (heartbeat missing)"
    lines = [
        f"supervisor:    {alive}",
        f"trading state: {_field(state, 'trading_state')} since {_ago(state.get('since'), now)}",
        f"health:        {_field(state, 'health')}",
        f"breaker:       {_field(state, 'breaker')}",
        f"kill switch:   {_field(state, 'kill_switch')}",
        f"reason:        {safe_line(str(state.get('reason', '')), STATUS_LINE_MAX_CHARS)}",
        f"instance:      {_field(state, 'instance')} (leader {_field(state, 'leader')}, "
        f"version {_field(state, 'version')})",
        "",
    ]
    watchdogs = published.get("watchdogs")
    rows = [
        [
            name,
            h.get("status", "never ran"),
            h.get("value", ""),
            _ago(h.get("last_run"), now),
            h.get("streak", ""),
            h.get("reason", ""),
        ]
        for name, h in (watchdogs.items() if isinstance(watchdogs, dict) else [])
    ]
    lines.append(table(["WATCHDOG", "STATUS", "VALUE", "LAST RUN", "STREAK", "REASON"], rows))
    return "\n".join(lines)


def _field(state: Mapping[str, object], name: str) -> str:
    return cell(state.get(name, "?"))


def _ago(epoch: object, now: float) -> str:
    try:
        return f"{format_duration(max(0.0, now - float(str(epoch))))} ago"
    except ValueError:
        return "-"

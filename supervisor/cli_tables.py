"""Plain-text tables for `check` and `status`, readable at 03:00 in a terminal."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

from supervisor.model import Verdict
from supervisor.quantities import format_duration, format_value


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for row in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


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
        return f"cannot read the published state: {published['error']}"
    state = published.get("state")
    state = state if isinstance(state, dict) else {}
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
        f"trading state: {state.get('trading_state', '?')} since {_ago(state.get('since'), now)}",
        f"health:        {state.get('health', '?')}",
        f"breaker:       {state.get('breaker', '?')}",
        f"kill switch:   {state.get('kill_switch', '?')}",
        f"reason:        {state.get('reason', '')}",
        f"instance:      {state.get('instance', '?')} (leader {state.get('leader', '?')}, "
        f"version {state.get('version', '?')})",
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


def _ago(epoch: object, now: float) -> str:
    try:
        return f"{format_duration(max(0.0, now - float(str(epoch))))} ago"
    except ValueError:
        return "-"

"""Plain-text tables for `check` and `status`, readable at 03:00 in a terminal.

Every cell and field is outside text (a reason, a value read back from Redis): each is one
safe line (supervisor/text.py), so no escape sequence reaches the terminal, no newline breaks
the table, and a 10 kB reason does not bury it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

from supervisor import stored
from supervisor.model import Verdict
from supervisor.quantities import format_duration, format_value
from supervisor.text import CELL_MAX_CHARS, STATUS_LINE_MAX_CHARS, safe_line
from supervisor.values import parse_number

OFFSET_SHOWN_MAX_S = 1e7  # a clock offset read back beyond this (or NaN) is not shown as one


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
    now = time.time()
    alive = bool(published.get("alive"))
    last = "" if alive else " (last published: no supervisor is alive to update it)"
    lines = [
        f"supervisor:    {_liveness(published, now)}",
        f"trading state: {_field(state, 'trading_state')} since {_ago(state.get('since'), now)}"
        + last,
        f"health:        {_field(state, 'health')}",
        f"breaker:       {_group(published, state, 'breaker')}",
        f"kill switch:   {_group(published, state, 'kill_switch')}",
        f"reason:        {safe_line(str(state.get('reason', '')), STATUS_LINE_MAX_CHARS)}",
        f"instance:      {_field(state, 'instance')} (leader {_field(state, 'leader')}, "
        f"version {_field(state, 'version')})",
        f"clock offset:  {_clock_offset(state)}",
        "",
    ]
    if not alive:
        lines.append("watchdogs: STALE, as last published; nothing evaluates them now")
    watchdogs = published.get("watchdogs")
    rows = [
        [
            name,
            _watchdog_status(h, alive),
            h.get("value", ""),
            _ago(h.get("last_run"), now),
            h.get("streak", ""),
            h.get("reason", ""),
        ]
        for name, h in (watchdogs.items() if isinstance(watchdogs, dict) else [])
    ]
    lines.append(table(["WATCHDOG", "STATUS", "VALUE", "LAST RUN", "STREAK", "REASON"], rows))
    instances = published.get("instances")
    if isinstance(instances, list) and _worth_a_table(instances):
        lines += ["", render_instances(instances, now)]
    return "\n".join(lines)


def _liveness(published: Mapping[str, object], now: float) -> str:
    heartbeat = published.get("heartbeat_at")
    if isinstance(heartbeat, float):
        return f"alive (heartbeat {format_duration(max(0.0, now - heartbeat))} ago)"
    if published.get("alive"):
        return "alive? (a heartbeat is there, but it is not a time)"
    return "NO LIVE SUPERVISOR (heartbeat missing)"


def _group(published: Mapping[str, object], state: Mapping[str, object], name: str) -> str:
    """The breaker's or kill switch's published state; "none configured" when the config has
    no such actuator (the daemon publishes OPEN / OFF regardless, and OPEN reads as tripped)."""
    configured = published.get("configured")
    if isinstance(configured, Mapping) and configured.get(name) is False:
        return "none configured"
    value = _field(state, name)
    return "not tripped (OPEN)" if name == "breaker" and value == "OPEN" else value


def _watchdog_status(published: Mapping[str, str], alive: bool) -> str:
    status = published.get("status", "never ran")
    return status if alive else f"STALE (was {status})"


def _worth_a_table(instances: Sequence[Mapping[str, str]]) -> bool:
    """With [ha] on, or several instances in one namespace; not for one standalone daemon."""
    return len(instances) > 1 or any(r.get("role") != "standalone" for r in instances)


def render_instances(instances: Sequence[Mapping[str, str]], now: float) -> str:
    """Every live instance: its role, the leader's token and lease age, and whether it sees
    the verdicts the leader sees."""
    leaders = [r for r in instances if r.get("role") in ("leader", "standalone")]
    reference = _verdicts(leaders[0]) if len(leaders) == 1 else None
    rows = [
        [
            r.get("instance", "?"),
            r.get("role", "?"),
            r.get("fencing_token") or "-",
            f"{r['lease_age_s']}s" if r.get("lease_age_s") else "-",
            r.get("trading_state", "?"),
            _ago(r.get("updated_at"), now),
            _compared(_verdicts(r), reference),
        ]
        for r in instances
    ]
    headers = ["INSTANCE", "ROLE", "TOKEN", "LEASE AGE", "STATE", "UPDATED", "VERDICTS"]
    count = "no leader" if not leaders else "" if len(leaders) == 1 else "MORE THAN ONE LEADER"
    title = f"instances: {len(instances)} live" + (f", {count}" if count else "")
    return title + "\n" + table(headers, rows)


def _verdicts(record: Mapping[str, str]) -> dict[str, str] | None:
    try:
        verdicts = stored.decode_json(record.get("verdicts", ""))
    except stored.Unreadable:
        return None
    return verdicts if isinstance(verdicts, dict) else None


def _compared(mine: dict[str, str] | None, leader: dict[str, str] | None) -> str:
    if mine is None or leader is None:
        return "?"
    differ = sorted(n for n in set(mine) | set(leader) if mine.get(n) != leader.get(n))
    if not differ:
        return "same as leader"
    shown = ", ".join(f"{n}={mine.get(n, '-')}" for n in differ[:3])
    return f"differ: {shown}" + (f" (+{len(differ) - 3})" if len(differ) > 3 else "")


def _clock_offset(state: Mapping[str, object]) -> str:
    """Redis TIME against the daemon's clock, as the daemon last measured it."""
    try:
        offset = float(str(state.get("clock_offset", "")))
        uncertainty = float(str(state.get("clock_offset_uncertainty", "")))
    except ValueError:
        return "not measured (no Redis TIME reading)"
    if not (abs(offset) < OFFSET_SHOWN_MAX_S and 0 <= uncertainty < OFFSET_SHOWN_MAX_S):
        return "not measured (no Redis TIME reading)"  # what was read back is no offset
    side = "ahead of" if offset >= 0 else "behind"
    return (
        f"Redis TIME {abs(offset) * 1000:.1f} ms {side} the daemon's clock"
        f" (±{uncertainty * 1000:.1f} ms)"
    )


def _field(state: Mapping[str, object], name: str) -> str:
    return cell(state.get(name, "?"))


def _ago(epoch: object, now: float) -> str:
    try:
        return f"{format_duration(max(0.0, now - parse_number(str(epoch))))} ago"
    except ValueError:  # absent, or not a number (written by hand)
        return "-"

"""`check` as a Nagios / Icinga plugin, after the monitoring-plugins guidelines.

First line: `TRADING-SUPERVISOR <STATE> - <summary> | <perfdata>`; then the table as long
output. Perfdata has one `'label'=value[UOM];warn;crit` per subject with a value, where warn
is the watchdog's `warn` and crit its `breach` (the level that trips); a subject with no
value is `U`. Exit codes: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from supervisor.config.watchdog_base import AgeThresholds, ValueThresholds
from supervisor.constants import NAGIOS_CRITICAL, NAGIOS_OK, NAGIOS_UNKNOWN, NAGIOS_WARNING
from supervisor.model import Status, Verdict
from supervisor.text import safe_line

PLUGIN = "TRADING-SUPERVISOR"
STATE_NAMES = {NAGIOS_OK: "OK", NAGIOS_WARNING: "WARNING", NAGIOS_CRITICAL: "CRITICAL"}
STATE_NAMES[NAGIOS_UNKNOWN] = "UNKNOWN"
MAX_NAMED = 3  # subjects named in the summary; the rest are counted
MAX_PERFDATA = 50  # Nagios keeps a few KB of plugin output: the worst subjects first
UOM = {"s": "s", "ratio": ""}  # our units that are also Nagios units of measure

Thresholds = tuple[float | None, float | None]  # (warn, crit)


def nagios_code(statuses: Sequence[Status]) -> int:
    """2 if anything breaches, else 3 if anything is unknown, else 1 if anything warns, else 0.

    UNKNOWN outranks WARN: for a safety check, not being able to see is worse than a warning.
    """
    if any(s.is_failing for s in statuses):
        return NAGIOS_CRITICAL
    if Status.UNKNOWN in statuses:
        return NAGIOS_UNKNOWN
    if Status.WARN in statuses:
        return NAGIOS_WARNING
    return NAGIOS_OK


def thresholds(config: object) -> Thresholds:
    """A watchdog config's (warn, breach), for perfdata's warn;crit."""
    if isinstance(config, AgeThresholds):
        return config.warn_s, config.breach_s
    if isinstance(config, ValueThresholds):
        return config.warn, config.breach
    return None, None


def plugin_output(verdicts: Sequence[Verdict], limits: Mapping[str, Thresholds]) -> str:
    """The first line of the plugin's output (the table follows it as long output)."""
    code = nagios_code([v.status for v in verdicts])
    line = f"{PLUGIN} {STATE_NAMES[code]} - {summary(verdicts)}"
    data = perfdata(verdicts, limits)
    return f"{line} | {data}" if data else line


def summary(verdicts: Sequence[Verdict]) -> str:
    if not verdicts:
        return "no watchdog evaluated"
    bad = worst_first([v for v in verdicts if v.status is not Status.OK])
    head = f"{len(verdicts) - len(bad)} of {len(verdicts)} subjects OK"
    named = [f"{v.watchdog}/{v.subject} {v.status.name}: {v.reason}" for v in bad[:MAX_NAMED]]
    more = [f"{len(bad) - MAX_NAMED} more not OK"] if len(bad) > MAX_NAMED else []
    return _printable("; ".join([head, *named, *more]))


def perfdata(verdicts: Sequence[Verdict], limits: Mapping[str, Thresholds]) -> str:
    chosen = worst_first(list(verdicts))[:MAX_PERFDATA]
    return " ".join(_perf_item(v, limits.get(v.watchdog, (None, None))) for v in chosen)


def worst_first(verdicts: list[Verdict]) -> list[Verdict]:
    order = [Status.CRITICAL, Status.BREACH, Status.UNKNOWN, Status.WARN, Status.OK]
    return sorted(verdicts, key=lambda v: order.index(v.status))


def _perf_item(verdict: Verdict, limits: Thresholds) -> str:
    label = _quote(f"{verdict.watchdog}/{verdict.subject}")
    value = verdict.value
    if value is None or not math.isfinite(value):
        return f"{label}=U"
    warn, crit = (_number(limit) for limit in limits)
    return f"{label}={_number(value)}{UOM.get(verdict.unit, '')};{warn};{crit}"


def _quote(label: str) -> str:
    """Labels with spaces, quotes or "=" are single-quoted, quotes doubled (the guidelines)."""
    label = _printable(label)
    if any(c in label for c in " '=\""):
        return "'" + label.replace("'", "''") + "'"
    return label


def _printable(text: str) -> str:
    """One line (text from outside escaped, supervisor/text.py) with no "|": it would start
    the perfdata."""
    return safe_line(text).replace("|", "/")


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"

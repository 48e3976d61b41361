"""`check` as a Nagios / Icinga plugin, after the monitoring-plugins guidelines.

The first line is always `TRADING-SUPERVISOR <STATE> - <summary> | <perfdata>`, and the
exit code is the state's: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN, nothing else. It is
CRITICAL whenever trading is not ACTIVE or no live supervisor protects it, whatever the
watchdogs say right now: `check` must never call a halted desk or a dead protector OK.

Perfdata: one `label=value[UOM];warn;crit` per subject with a finite value, warn and crit
the levels the subject is judged against (a watchdog's `warn` and `breach`, `max_ttl`,
`max_latency`...; `10:` where lower is worse). A subject without a value gets no item (Icinga 2
refuses `U`, the guidelines' "no value"), and the summary says how many were left out. Labels
hold no `'`, `=`, `|` or `::` (Icinga 2 splits perfdata on the first `=`, and reads `::` as a
check_multi prefix) and are single-quoted when they hold a space; numbers are plain decimals
(the guidelines' `[-0-9.]`), never NaN, infinities or exponents.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from supervisor.config.watchdog_base import AlertLevels
from supervisor.constants import NAGIOS_CRITICAL, NAGIOS_OK, NAGIOS_UNKNOWN, NAGIOS_WARNING
from supervisor.model import Status, Verdict
from supervisor.text import safe_line

PLUGIN = "TRADING-SUPERVISOR"
STATE_NAMES = {NAGIOS_OK: "OK", NAGIOS_WARNING: "WARNING", NAGIOS_CRITICAL: "CRITICAL"}
STATE_NAMES[NAGIOS_UNKNOWN] = "UNKNOWN"
PRECEDENCE = [NAGIOS_OK, NAGIOS_WARNING, NAGIOS_UNKNOWN, NAGIOS_CRITICAL]  # later wins
MAX_NAMED = 3  # subjects named in the summary; the rest are counted
MAX_PERFDATA = 50  # Nagios keeps a few KB of plugin output: the worst subjects first
# Numbers are plain decimals: at or beyond LARGEST_SHOWN (16 digits) a value is left out,
# closer to 0 than SMALLEST_SHOWN it is shown as 0 (no exponent, no 300 zeros).
LARGEST_SHOWN, SMALLEST_SHOWN = 1e15, 1e-9
UOM = {"s": "s", "ratio": ""}  # our units that are also Nagios units of measure
_LABEL_FORBIDDEN = re.compile(r"['=|]|:{2,}")

Levels = Callable[[Verdict], AlertLevels]


@dataclass(frozen=True)
class Protector:
    """What the daemon published in Redis, as `check` reads it back: is a supervisor alive
    (its heartbeat key, which Redis expires: no clock of ours or the daemon's is compared),
    and the trading state it last published."""

    alive: bool
    trading_state: str | None = None
    reason: str = ""
    error: str | None = None  # the published state could not be read

    @classmethod
    def from_published(cls, published: Mapping[str, object]) -> Protector:
        if "error" in published:
            return cls(alive=False, error=str(published["error"]))
        state = published.get("state")
        fields = state if isinstance(state, dict) else {}
        trading_state = fields.get("trading_state")
        return cls(
            alive=bool(published.get("alive")),
            trading_state=str(trading_state) if trading_state else None,
            reason=str(fields.get("reason", "")),
        )


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


def worst(codes: Sequence[int]) -> int:
    return max(codes, key=PRECEDENCE.index, default=NAGIOS_OK)


def protector_findings(protector: Protector) -> list[tuple[int, str]]:
    """(code, text) for each thing about the supervisor itself that is not as it should be."""
    if protector.error is not None:
        return [(NAGIOS_UNKNOWN, f"cannot read the supervisor's state: {protector.error}")]
    findings = []
    if not protector.alive:
        findings.append((NAGIOS_CRITICAL, "NO LIVE SUPERVISOR (no heartbeat): trading unprotected"))
    state = protector.trading_state
    if state is None and protector.alive:
        findings.append((NAGIOS_UNKNOWN, "no trading state published"))
    elif state is not None and state != "ACTIVE":
        why = f": {protector.reason}" if protector.reason else ""
        findings.append((NAGIOS_CRITICAL, f"trading {state}{why}"))
    return findings


def plugin_output(
    verdicts: Sequence[Verdict], levels: Levels, protector: Protector
) -> tuple[int, str]:
    """The exit code and the first line of the plugin's output (the table follows it)."""
    findings = protector_findings(protector)
    code = worst([nagios_code([v.status for v in verdicts]), *(c for c, _ in findings)])
    items, left_out = perfdata(verdicts, levels)
    texts = [text for _, text in findings] + [summary(verdicts)]
    if left_out:
        texts.append(f"{left_out} subjects without a value are not in the perfdata")
    line = f"{PLUGIN} {STATE_NAMES[code]} - {_printable('; '.join(texts))}"
    return code, f"{line} | {items}" if items else line


def unknown_output(reason: str) -> str:
    """The one line of a check that could not run (a bad config, an unknown watchdog)."""
    return f"{PLUGIN} {STATE_NAMES[NAGIOS_UNKNOWN]} - {_printable(reason)}"


def summary(verdicts: Sequence[Verdict]) -> str:
    if not verdicts:
        return "no watchdog evaluated"
    bad = worst_first([v for v in verdicts if v.status is not Status.OK])
    head = f"{len(verdicts) - len(bad)} of {len(verdicts)} subjects OK"
    named = [f"{v.watchdog}/{v.subject} {v.status.name}: {v.reason}" for v in bad[:MAX_NAMED]]
    more = [f"{len(bad) - MAX_NAMED} more not OK"] if len(bad) > MAX_NAMED else []
    return "; ".join([head, *named, *more])


def perfdata(verdicts: Sequence[Verdict], levels: Levels) -> tuple[str, int]:
    """The perfdata items (at most MAX_PERFDATA, the worst first) and how many subjects had
    no value that can be shown."""
    shown = [(v, _number(v.value)) for v in worst_first(list(verdicts))]
    with_value = [(v, number) for v, number in shown if number is not None]
    items = [_perf_item(v, number, levels(v)) for v, number in with_value[:MAX_PERFDATA]]
    return " ".join(items), len(shown) - len(with_value)


def worst_first(verdicts: list[Verdict]) -> list[Verdict]:
    order = [Status.CRITICAL, Status.BREACH, Status.UNKNOWN, Status.WARN, Status.OK]
    return sorted(verdicts, key=lambda v: order.index(v.status))


def _perf_item(verdict: Verdict, value: str, limits: AlertLevels) -> str:
    label = perf_label(f"{verdict.watchdog}/{verdict.subject}")
    # "10:" is the guidelines' range "alert below 10" (Icinga 2 reads ranges as no threshold).
    suffix = ":" if limits.direction == "below" else ""
    warn, crit = (_threshold(limit, suffix) for limit in (limits.warn, limits.breach))
    return f"{label}={value}{UOM.get(verdict.unit, '')};{warn};{crit}"


def perf_label(text: str) -> str:
    """One safe line without the characters perfdata parsers split on; quoted if it has a
    space (all whitespace becomes a plain space: parsers split on that)."""
    label = _LABEL_FORBIDDEN.sub("_", _printable(text))
    label = "".join(" " if c.isspace() else c for c in label)
    return f"'{label}'" if " " in label else label


def _printable(text: str) -> str:
    """One line (text from outside escaped, supervisor/text.py) with no "|": it would start
    the perfdata."""
    return safe_line(text).replace("|", "/")


def _threshold(value: float | None, suffix: str) -> str:
    number = _number(value)
    return "" if number is None else number + suffix


def _number(value: float | None) -> str | None:
    """A plain decimal with 6 significant digits; None for no value, NaN, ±inf or a
    magnitude of LARGEST_SHOWN or more."""
    if value is None or not math.isfinite(value) or abs(value) >= LARGEST_SHOWN:
        return None
    if abs(value) < SMALLEST_SHOWN:
        return "0"
    text = format(Decimal(f"{value:.6g}"), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text

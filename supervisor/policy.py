"""Verdicts in, decisions out: hysteresis, fail-closed UNKNOWN handling and latching. No I/O.

Per watchdog, each cycle:
1. the judged status is the worst verdict; an UNKNOWN that lasts `unknown_grace_s` becomes
   BREACH when `fail_closed` (cannot see it for long -> assume the worst);
2. a counter per severity (WARN, BREACH, CRITICAL) counts consecutive cycles at or above it;
   UNKNOWN neither confirms nor refutes, so it holds the counters; OK resets them;
3. a severity whose counter reaches `trip_after` fires its actuators once per incident
   (CRITICAL implies BREACH implies WARN, so a sudden CRITICAL fires all three, in order);
4. `clear_after` consecutive OKs end the incident. Nothing here ever orders a reset: what was
   engaged stays engaged (latching) until a person resets it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from supervisor.model import Decision, Status, Verdict, Verdicts
from supervisor.quantities import format_duration

SEVERITIES = (Status.WARN, Status.BREACH, Status.CRITICAL)


@dataclass(frozen=True)
class Rules:
    trip_after: int = 1
    clear_after: int = 3
    fail_closed: bool = False
    unknown_grace_s: float = 10.0
    actions: Mapping[Status, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Incident:
    id: str
    started_at: float
    fired: Status = Status.OK  # the highest severity whose actuators have been ordered


@dataclass(frozen=True)
class PolicyState:
    status: Status = Status.OK
    reason: str = ""
    counters: tuple[int, int, int] = (0, 0, 0)  # consecutive cycles at >= WARN, BREACH, CRITICAL
    ok_streak: int = 0
    unknown_since: float | None = None
    incident: Incident | None = None

    @property
    def streak(self) -> int:
        """How many consecutive cycles the current status has held (for publishing)."""
        if self.status in SEVERITIES:
            return self.counters[SEVERITIES.index(self.status)]
        return self.ok_streak

    @property
    def confirmed(self) -> Status:
        """The highest severity the open incident has confirmed (its counter reached
        trip_after), held until clear_after OKs end the incident: what alerts should follow."""
        return self.incident.fired if self.incident is not None else Status.OK


def step(
    rules: Rules,
    state: PolicyState,
    watchdog: str,
    verdicts: Sequence[Verdict],
    now: float,
    new_id: Callable[[], str],
) -> tuple[PolicyState, list[Decision]]:
    status, reason, unknown_since = _judge(rules, state, Verdicts.of(verdicts), now)
    counters, ok_streak = _count(state, status)
    incident = state.incident
    if incident is None and status in SEVERITIES:
        incident = Incident(id=new_id(), started_at=now)
    decisions: list[Decision] = []
    if incident is not None:
        incident, decisions = _fire(rules, incident, counters, watchdog, reason, now)
        if ok_streak >= rules.clear_after:
            incident = None
    new_state = PolicyState(status, reason, counters, ok_streak, unknown_since, incident)
    return new_state, decisions


def action_failed(state: PolicyState, severity: Status) -> PolicyState:
    """An ordered action did not happen: order that severity again on the next cycle."""
    incident = state.incident
    if incident is None or incident.fired < severity:
        return state
    below = SEVERITIES.index(severity) - 1
    fired = SEVERITIES[below] if below >= 0 else Status.OK
    return replace(state, incident=replace(incident, fired=fired))


def _judge(
    rules: Rules, state: PolicyState, verdicts: Verdicts, now: float
) -> tuple[Status, str, float | None]:
    status = verdicts.worst if verdicts else Status.UNKNOWN
    reason = _reason_for(status, verdicts)
    if status is not Status.UNKNOWN:
        return status, reason, None
    since = state.unknown_since if state.unknown_since is not None else now
    if rules.fail_closed and now - since >= rules.unknown_grace_s:
        unseen = format_duration(now - since)
        return Status.BREACH, f"fail-closed: unknown for {unseen} ({reason})", since
    return Status.UNKNOWN, reason, since


def _reason_for(status: Status, verdicts: Verdicts) -> str:
    """The first three reasons at `status` (each once), and how many more subjects there are."""
    if not verdicts:
        return "no verdicts"
    shown = [v.reason for v in verdicts.with_status(status, 3)]
    more = verdicts.counts[status] - len(shown)
    named = list(dict.fromkeys(shown))  # one Redis error for every subject is said once
    if len(named) < len(shown):
        return "; ".join(named) + f" ({verdicts.counts[status]} subjects)"
    return "; ".join(named) + (f" (+{more} more)" if more > 0 else "")


def _count(state: PolicyState, status: Status) -> tuple[tuple[int, int, int], int]:
    if status is Status.UNKNOWN:
        return state.counters, 0
    if status is Status.OK:
        return (0, 0, 0), state.ok_streak + 1
    w, b, c = (
        count + 1 if status >= severity else 0
        for count, severity in zip(state.counters, SEVERITIES, strict=True)
    )
    return (w, b, c), 0


def _fire(
    rules: Rules,
    incident: Incident,
    counters: tuple[int, int, int],
    watchdog: str,
    reason: str,
    now: float,
) -> tuple[Incident, list[Decision]]:
    decisions = []
    for severity, count in zip(SEVERITIES, counters, strict=True):
        if count < rules.trip_after or severity <= incident.fired:
            continue
        incident = replace(incident, fired=severity)
        actuators = tuple(rules.actions.get(severity, ()))
        if actuators:
            decisions.append(Decision(watchdog, severity, actuators, reason, incident.id, now))
    return incident, decisions

"""What a candidate config changes: its trips (decisions that engage actuators) against
those of the recording's own config, per watchdog and severity. Two trips are the same one
when they are the nearest within MATCH_WINDOW_S; the rest are gained or lost."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from supervisor.model import Decision, Status
from supervisor.quantities import format_duration
from supervisor.recorder.instants import stamp
from supervisor.recorder.replay import Timeline

MATCH_WINDOW_S = 900.0


@dataclass(frozen=True)
class Change:
    watchdog: str
    severity: Status
    actuators: tuple[str, ...]
    before: float | None  # the recorded config's trip (None: gained)
    after: float | None  # the candidate's (None: lost)

    @property
    def kind(self) -> str:
        if self.before is None:
            return "gained"
        if self.after is None:
            return "lost"
        if self.after < self.before:
            return "earlier"
        return "later" if self.after > self.before else "same"


def trips_diff(recorded: Timeline, candidate: Timeline) -> list[Change]:
    changes: list[Change] = []
    keys = {(d.watchdog, d.severity) for d in [*recorded.decisions, *candidate.decisions]}
    for watchdog, severity in sorted(keys):
        if watchdog in candidate.unreplayable:
            continue
        before = [d for d in recorded.decisions if (d.watchdog, d.severity) == (watchdog, severity)]
        after = [d for d in candidate.decisions if (d.watchdog, d.severity) == (watchdog, severity)]
        changes += _match(before, after)
    return sorted(changes, key=lambda c: min(t for t in (c.before, c.after) if t is not None))


def _match(before: list[Decision], after: list[Decision]) -> list[Change]:
    left = list(after)
    changes = []
    for decision in before:
        near = min(left, key=lambda d: abs(d.at - decision.at), default=None)
        if near is not None and abs(near.at - decision.at) <= MATCH_WINDOW_S:
            left.remove(near)
            changes.append(_change(decision, decision.at, near.at))
        else:
            changes.append(_change(decision, decision.at, None))
    changes += [_change(d, None, d.at) for d in left]
    return changes


def _change(decision: Decision, before: float | None, after: float | None) -> Change:
    return Change(decision.watchdog, decision.severity, decision.actuators, before, after)


def render_diff(changes: list[Change], emit: Callable[[str], None]) -> None:
    counts = {kind: sum(1 for c in changes if c.kind == kind) for kind in _KINDS}
    emit("candidate vs recorded config: " + ", ".join(f"{counts[k]} trips {k}" for k in _KINDS))
    for change in changes:
        if change.kind == "same":
            continue
        what = f"{change.watchdog} {change.severity.name} ({', '.join(change.actuators)})"
        emit(f"  {_describe(change)}: {what}")


_KINDS = ("gained", "lost", "earlier", "later", "same")


def _describe(change: Change) -> str:
    if change.before is None:
        assert change.after is not None
        return f"gained at {stamp(change.after)}"
    if change.after is None:
        return f"lost (was at {stamp(change.before)})"
    moved = format_duration(abs(change.after - change.before))
    return f"{change.kind} by {moved} ({stamp(change.before)} -> {stamp(change.after)})"

"""Replay: the real policy (`policy.step`: hysteresis, trip_after, unknown_grace and
fail_closed, clear_after) over a recording, touching nothing outside. With the recording's
own config it feeds each run's recorded statuses, so it takes the daemon's decisions; with
a candidate config it judges the recorded values again against the candidate's thresholds
and applies the candidate's rules and sessions.

What a recording cannot answer is named, never guessed: a watchdog it does not hold, one
whose kind or source changed, a "below" threshold of a watchdog recorded without every
subject's value, runs a candidate session would watch that the recorded session did not.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

from supervisor.config.settings import Settings
from supervisor.config.watchdog_base import WatchdogBase
from supervisor.model import Decision, Status, Verdict, Verdicts
from supervisor.policy import PolicyState, Rules, step
from supervisor.protection import rules_for
from supervisor.quantities import format_value
from supervisor.recorder.blocks import RunRecord
from supervisor.recorder.catalog import Thresholds, WatchdogEntry, entry_for
from supervisor.recorder.recording import Recording
from supervisor.sessions import Session
from supervisor.watchdogs.thresholds import judge_value


@dataclass
class Event:
    at: float
    watchdog: str
    what: str  # "status", "opened", "fired", "cleared"
    status: Status
    text: str
    actuators: tuple[str, ...] = ()


@dataclass
class Timeline:
    events: list[Event] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    unreplayable: dict[str, str] = field(default_factory=dict)  # watchdog -> why
    notes: list[str] = field(default_factory=list)
    runs: int = 0
    configs: list[str] = field(default_factory=list)  # the hashes of the configs that recorded
    first: float | None = None  # the first and last run replayed
    last: float | None = None
    values: dict[str, list[tuple[float, float]]] = field(default_factory=dict)  # for --plot
    thresholds: dict[str, Thresholds | None] = field(default_factory=dict)


@dataclass
class Candidate:
    """One watchdog of a candidate config: its rules, thresholds and session."""

    config: WatchdogBase
    entry: WatchdogEntry
    rules: Rules
    session: Session | None


def candidates(settings: Settings) -> dict[str, Candidate]:
    sessions = {name: s.build(name) for name, s in settings.sessions.items()}
    return {
        w.name: Candidate(w, entry_for(w), rules_for(w), sessions.get(w.session or ""))
        for w in settings.watchdogs
    }


class Replay:
    def __init__(self, candidate: Settings | None) -> None:
        self.candidate = candidates(candidate) if candidate is not None else None
        self.states: dict[str, PolicyState] = {}
        self.timeline = Timeline()
        self.ids = itertools.count(1)
        self.gaps: dict[str, int] = {}

    def run(self, recording: Recording, start: float | None, end: float | None) -> Timeline:
        seen: set[str] = set()
        for segment, run in recording.runs(start, end):
            recorded = segment.entries.get(run.watchdog)
            if recorded is None:
                continue
            seen.add(run.watchdog)
            if segment.config_hash not in self.timeline.configs:
                self.timeline.configs.append(segment.config_hash)
            verdicts = self._verdicts(run, recorded)
            if verdicts is not None:
                self.step(run.watchdog, run.at, verdicts, self._rules(run.watchdog, recorded))
                self.note_value(run.watchdog, run.at, run.highest)
                self.timeline.thresholds[run.watchdog] = self._thresholds(run.watchdog, recorded)
        self._finish(seen, recording)
        return self.timeline

    def note_value(self, name: str, at: float, value: float | None) -> None:
        if value is not None:
            self.timeline.values.setdefault(name, []).append((at, value))

    def _thresholds(self, name: str, recorded: WatchdogEntry) -> Thresholds | None:
        if self.candidate is None:
            return recorded.thresholds
        return self.candidate[name].entry.thresholds

    def _rules(self, name: str, recorded: WatchdogEntry) -> Rules:
        if self.candidate is None:
            return recorded.rules()
        return self.candidate[name].rules

    def _verdicts(self, run: RunRecord, recorded: WatchdogEntry) -> Verdicts | None:
        if self.candidate is None:
            return as_recorded(run)
        candidate = self.candidate.get(run.watchdog)
        if candidate is None:
            return None
        why = why_not(candidate.entry, recorded, run)
        if why is not None:
            self.timeline.unreplayable.setdefault(run.watchdog, why)
            return None
        session = candidate.session
        if session is not None and session.opened_at(run.at) is None:
            return Verdicts.uniform(
                run.watchdog, run.subjects[: run.size], Status.OK, "session closed"
            )
        if not run.session_open:  # recorded while closed: nothing was read
            self.gaps[run.watchdog] = self.gaps.get(run.watchdog, 0) + 1
            return None
        return judged_again(run, recorded, candidate.entry.thresholds)

    def step(self, name: str, at: float, verdicts: Verdicts, rules: Rules) -> None:
        """One run of watchdog `name` through the policy, noted in the timeline."""
        before = self.states.get(name, PolicyState())
        after, decisions = step(rules, before, name, verdicts, at, self._new_id)
        self.states[name] = after
        timeline = self.timeline
        timeline.runs += 1
        timeline.first = at if timeline.first is None else min(timeline.first, at)
        timeline.last = at if timeline.last is None else max(timeline.last, at)
        self.timeline.decisions += decisions
        self._note(at, name, before, after, decisions)

    def _new_id(self) -> str:
        return str(next(self.ids))

    def _note(
        self,
        at: float,
        name: str,
        before: PolicyState,
        after: PolicyState,
        decisions: list[Decision],
    ) -> None:
        events = self.timeline.events
        if before.incident is None and after.incident is not None:
            events.append(
                Event(at, name, "opened", after.status, f"incident {after.incident.id} opened")
            )
        if before.status is not after.status:
            events.append(Event(at, name, "status", after.status, after.reason))
        for decision in decisions:
            fired = ", ".join(decision.actuators)
            events.append(
                Event(
                    at,
                    name,
                    "fired",
                    decision.severity,
                    f"would engage {fired}",
                    decision.actuators,
                )
            )
        if before.incident is not None and after.incident is None:
            lasted = at - before.incident.started_at
            text = f"incident {before.incident.id} cleared after {format_value(lasted, 's')}"
            events.append(Event(at, name, "cleared", after.status, text))

    def _finish(self, seen: set[str], recording: Recording) -> None:
        timeline = self.timeline
        if self.candidate is not None:
            for name in self.candidate:
                if name not in seen:
                    timeline.unreplayable.setdefault(name, "not in the recording")
            for name in sorted(seen - set(self.candidate)):
                timeline.notes.append(f"{name}: recorded, not in the candidate config")
        for name, count in sorted(self.gaps.items()):
            timeline.notes.append(
                f"{name}: {count} runs the candidate's session would watch were recorded"
                " with the session closed (nothing read): skipped"
            )
        timeline.notes += recording.problems


def as_recorded(run: RunRecord) -> Verdicts:
    """The run's verdicts as the daemon judged them (reasons rebuilt from the values)."""
    name, subjects, usual = run.watchdog, run.subjects, run.usual

    def build(i: int) -> Verdict:
        return Verdict(name, _subject(subjects, i), usual, f"{_subject(subjects, i)} {usual.name}")

    unusual = {
        i: Verdict(name, _subject(subjects, i), status, _reason(subjects, i, status, value), value)
        for i, (status, value) in run.not_ok.items()
        if i < run.size
    }
    return Verdicts(run.size, usual, build, unusual, max_value=run.highest)


def why_not(candidate: WatchdogEntry, recorded: WatchdogEntry, run: RunRecord) -> str | None:
    """Why the candidate's watchdog cannot be replayed from this recording; None if it can."""
    if candidate.kind != recorded.kind:
        return f"kind {candidate.kind}, the recording holds {recorded.kind}"
    if candidate.fingerprint != recorded.fingerprint:
        return "reads something else than the recorded one (key, source or judging changed)"
    if candidate.thresholds != recorded.thresholds:
        if recorded.thresholds is None or candidate.thresholds is None:
            return "its thresholds cannot be judged from a single value"
        if candidate.thresholds.direction != recorded.thresholds.direction:
            return "direction changed"
        if candidate.thresholds.direction == "below" and not run.every_subject:
            return "a 'below' threshold over more subjects than every value was kept for"
    return None


def judged_again(
    run: RunRecord, recorded: WatchdogEntry, thresholds: Thresholds | None
) -> Verdicts:
    """The run judged with `thresholds`: statuses that came from the value (the recorded
    thresholds give them again) are judged anew, from the run's worst value; the others
    (UNKNOWN, a future timestamp...) stay as recorded."""
    if thresholds is None or thresholds == recorded.thresholds:
        return as_recorded(run)
    old = recorded.thresholds
    assert old is not None  # why_not refuses a change from no thresholds
    kept = {
        i: (status, value)
        for i, (status, value) in run.not_ok.items()
        if i < run.size and not _from_value(status, value, old)
    }
    worst_value = run.highest if thresholds.direction == "above" else run.lowest
    unusual = {
        i: Verdict(run.watchdog, _subject(run.subjects, i), s, _reason(run.subjects, i, s, v), v)
        for i, (s, v) in kept.items()
    }
    usual = run.usual if not _from_value(run.usual, None, old) else Status.OK
    if worst_value is not None:
        status = _judge(worst_value, thresholds)
        if status is not Status.OK:
            free = next(i for i in itertools.count() if i not in unusual)
            text = f"worst value {format_value(worst_value, '')} {status.name}"
            unusual[free] = Verdict(run.watchdog, "(worst value)", status, text, worst_value)
    name, subjects = run.watchdog, run.subjects

    def build(i: int) -> Verdict:
        return Verdict(name, _subject(subjects, i), usual, f"{_subject(subjects, i)} {usual.name}")

    size = max(run.size, len(unusual))
    return Verdicts(size, usual, build, unusual, max_value=run.highest)


def _from_value(status: Status, value: float | None, thresholds: Thresholds) -> bool:
    if status is Status.OK and value is None:
        return True  # an OK subject whose value was not listed: judged from the worst value
    return value is not None and _judge(value, thresholds) is status


def _judge(value: float, thresholds: Thresholds) -> Status:
    t = thresholds
    return judge_value(value, t.warn, t.breach, t.critical, t.direction).status


def _subject(subjects: Sequence[str], i: int) -> str:
    return subjects[i] if i < len(subjects) else f"#{i}"  # a recording is outside input


def _reason(subjects: Sequence[str], i: int, status: Status, value: float | None) -> str:
    shown = "" if value is None else f" {value:g}"
    return f"{_subject(subjects, i)}{shown} {status.name}"

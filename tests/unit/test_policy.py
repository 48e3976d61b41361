"""policy.step / action_failed: hysteresis, fail-closed UNKNOWN, latching, incidents."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from supervisor.model import Decision, Status, Verdict
from supervisor.policy import PolicyState, Rules, action_failed, step

OK, WARN, BREACH, CRITICAL, UNKNOWN = (
    Status.OK,
    Status.WARN,
    Status.BREACH,
    Status.CRITICAL,
    Status.UNKNOWN,
)
SEVERITIES = (WARN, BREACH, CRITICAL)
ALL_ACTIONS = {WARN: ("alert",), BREACH: ("breaker",), CRITICAL: ("flatten",)}
# The documented ranking of one watchdog's verdicts: UNKNOWN sits between WARN and BREACH.
RANK = {OK: 0, WARN: 1, UNKNOWN: 2, BREACH: 3, CRITICAL: 4}


class Ids:
    def __init__(self) -> None:
        self.issued = 0

    def __call__(self) -> str:
        self.issued += 1
        return f"inc-{self.issued}"


def verdict(status: Status, subject: str = "SPX") -> Verdict:
    return Verdict("spx_ticks", subject, status, f"{subject} is {status.name}")


def rules(**overrides: object) -> Rules:
    fields: dict[str, object] = {"actions": ALL_ACTIONS, **overrides}
    return Rules(**fields)  # type: ignore[arg-type]


class Run:
    """Feeds one status per second through `step`, keeping state and every step's decisions."""

    def __init__(self, rules: Rules, start: float = 1000.0) -> None:
        self.rules, self.state, self.now, self.ids = rules, PolicyState(), start, Ids()
        self.steps: list[list[Decision]] = []

    def feed(self, statuses: Iterable[Status], every: float = 1.0) -> list[Decision]:
        fired: list[Decision] = []
        for status in statuses:
            verdicts = [verdict(status)]
            self.state, decisions = step(
                self.rules, self.state, "spx_ticks", verdicts, self.now, self.ids
            )
            self.steps.append(decisions)
            fired.extend(decisions)
            self.now += every
        return fired


def severities(decisions: list[Decision]) -> list[Status]:
    return [d.severity for d in decisions]


@pytest.mark.parametrize("trip_after", [1, 2, 3, 5])
def test_trip_after_fires_on_exactly_the_nth_consecutive_breach(trip_after: int) -> None:
    run = Run(rules(trip_after=trip_after, actions={BREACH: ("breaker",)}))
    assert run.feed([BREACH] * (trip_after - 1)) == []
    decisions = run.feed([BREACH])
    assert [(d.severity, d.actuators) for d in decisions] == [(BREACH, ("breaker",))]


def test_an_ok_in_between_resets_the_count() -> None:
    run = Run(rules(trip_after=3, actions={BREACH: ("breaker",)}))
    assert run.feed([BREACH, BREACH, OK, BREACH, BREACH]) == []
    assert severities(run.feed([BREACH])) == [BREACH]


def test_a_warn_in_between_resets_the_breach_count() -> None:
    run = Run(rules(trip_after=2, actions={BREACH: ("breaker",)}))
    assert run.feed([BREACH, WARN, BREACH]) == []
    assert severities(run.feed([BREACH])) == [BREACH]


def test_unknown_holds_the_counters() -> None:
    run = Run(rules(trip_after=2, actions={BREACH: ("breaker",)}))
    assert run.feed([BREACH, UNKNOWN]) == []
    assert severities(run.feed([BREACH])) == [BREACH]


def test_without_verdicts_the_status_is_unknown() -> None:
    state, decisions = step(rules(), PolicyState(), "w", [], 0.0, Ids())
    assert (state.status, state.reason, decisions) == (UNKNOWN, "no verdicts", [])


def test_fail_closed_turns_unknown_into_breach_after_the_grace() -> None:
    run = Run(rules(fail_closed=True, unknown_grace_s=10.0, actions={BREACH: ("breaker",)}))
    assert run.feed([UNKNOWN] * 10) == []  # t = 0 .. 9 s unknown
    decisions = run.feed([UNKNOWN])  # 10 s unknown
    assert severities(decisions) == [BREACH]
    assert decisions[0].reason.startswith("fail-closed: unknown for 10s")
    assert run.state.status is BREACH


def test_a_known_status_restarts_the_unknown_grace() -> None:
    run = Run(rules(fail_closed=True, unknown_grace_s=10.0, actions={BREACH: ("breaker",)}))
    assert run.feed([UNKNOWN] * 9 + [OK] + [UNKNOWN] * 10) == []
    assert severities(run.feed([UNKNOWN])) == [BREACH]


def test_without_fail_closed_unknown_never_fires() -> None:
    run = Run(rules(fail_closed=False, unknown_grace_s=0.0))
    assert run.feed([UNKNOWN] * 200, every=60.0) == []
    assert run.state.incident is None


def test_a_sudden_critical_fires_every_severity_in_order() -> None:
    decisions = Run(rules()).feed([CRITICAL])
    assert [(d.severity, d.actuators) for d in decisions] == [
        (WARN, ("alert",)),
        (BREACH, ("breaker",)),
        (CRITICAL, ("flatten",)),
    ]
    assert len({d.incident_id for d in decisions}) == 1


def test_only_severities_with_actuators_produce_decisions() -> None:
    decisions = Run(rules(actions={CRITICAL: ("flatten",)})).feed([CRITICAL])
    assert [(d.severity, d.actuators) for d in decisions] == [(CRITICAL, ("flatten",))]


def test_each_severity_fires_once_per_incident() -> None:
    run = Run(rules())
    decisions = run.feed([BREACH] * 100)
    assert severities(decisions) == [WARN, BREACH]
    assert severities(run.feed([CRITICAL] * 10 + [WARN] * 5 + [BREACH])) == [CRITICAL]


def test_clear_after_oks_end_the_incident_and_a_new_breach_opens_another() -> None:
    run = Run(rules(clear_after=3, actions={BREACH: ("breaker",)}))
    first = run.feed([BREACH])
    assert run.feed([OK, OK, BREACH]) == []  # 2 OKs: still the same incident
    ongoing = run.state.incident
    assert ongoing is not None and ongoing.id == first[0].incident_id
    assert run.feed([OK, OK, OK]) == []
    ended = run.state.incident
    assert ended is None
    second = run.feed([BREACH])
    assert severities(second) == [BREACH]
    assert second[0].incident_id != first[0].incident_id


def test_an_unknown_breaks_the_ok_streak_that_ends_an_incident() -> None:
    run = Run(rules(clear_after=3, actions={BREACH: ("breaker",)}))
    run.feed([BREACH, OK, OK, UNKNOWN, OK, OK])
    assert run.state.incident is not None
    assert run.feed([OK]) == []
    assert run.state.incident is None


def test_action_failed_fires_the_same_severity_again_on_the_next_step() -> None:
    run = Run(rules(actions={BREACH: ("breaker",)}))
    first = run.feed([BREACH])
    run.state = action_failed(run.state, BREACH)
    again = run.feed([BREACH])
    assert [(d.severity, d.incident_id) for d in again] == [(BREACH, first[0].incident_id)]
    assert run.feed([BREACH]) == []


def test_action_failed_for_an_unfired_severity_or_no_incident_changes_nothing() -> None:
    run = Run(rules())
    assert action_failed(run.state, BREACH) == run.state
    run.feed([WARN])
    assert action_failed(run.state, BREACH) == run.state
    assert action_failed(run.state, WARN) != run.state


# --- properties against a reference model -------------------------------------------------


@dataclass
class Step:
    verdicts: list[Verdict]
    dt: float


STATUSES = st.sampled_from(list(Status))
STEPS = st.lists(
    st.builds(
        Step,
        st.lists(st.builds(verdict, STATUSES, st.sampled_from(["SPX", "ES"])), max_size=3),
        st.sampled_from([0.5, 1.0, 2.5, 6.0]),
    ),
    max_size=60,
)
RULES = st.builds(
    Rules,
    trip_after=st.integers(1, 4),
    clear_after=st.integers(1, 4),
    fail_closed=st.booleans(),
    unknown_grace_s=st.sampled_from([0.0, 3.0, 10.0]),
    actions=st.dictionaries(st.sampled_from(SEVERITIES), st.just(("act",)), max_size=3),
)


def effective(rules: Rules, steps: list[Step]) -> list[Status]:
    """Per step: the worst verdict, an UNKNOWN lasting the grace read as BREACH if fail-closed."""
    out, now, unknown_from = [], 0.0, None
    for item in steps:
        now += item.dt
        status = max((v.status for v in item.verdicts), key=RANK.__getitem__, default=UNKNOWN)
        unknown_from = (
            (now if unknown_from is None else unknown_from) if status is UNKNOWN else None
        )
        if unknown_from is not None and rules.fail_closed:
            status = BREACH if now - unknown_from >= rules.unknown_grace_s else UNKNOWN
        out.append(status)
    return out


def reference(rules: Rules, steps: list[Step]) -> list[tuple[int, Status, str]]:
    """(step index, severity, incident id) of every decision the policy should emit."""
    runs = dict.fromkeys(SEVERITIES, 0)
    fired: set[Status] = set()
    incident: str | None = None
    oks, issued = 0, 0
    expected: list[tuple[int, Status, str]] = []
    for index, status in enumerate(effective(rules, steps)):
        if status is not UNKNOWN:  # UNKNOWN holds the severity runs
            runs = {sev: runs[sev] + 1 if status >= sev else 0 for sev in SEVERITIES}
        oks = oks + 1 if status is OK else 0
        if incident is None and status in SEVERITIES:
            issued += 1
            incident, fired = f"inc-{issued}", set()
        if incident is None:
            continue
        for sev in SEVERITIES:
            if runs[sev] >= rules.trip_after and sev not in fired:
                fired.add(sev)
                expected.extend([(index, sev, incident)] if rules.actions.get(sev) else [])
        if oks >= rules.clear_after:
            incident = None
    return expected


def run_steps(rules: Rules, steps: list[Step]) -> list[tuple[int, Decision]]:
    state, ids, now = PolicyState(), Ids(), 0.0
    out: list[tuple[int, Decision]] = []
    for index, item in enumerate(steps):
        now += item.dt
        state, decisions = step(rules, state, "spx_ticks", item.verdicts, now, ids)
        out.extend((index, d) for d in decisions)
    return out


def breach_runs(rules: Rules, steps: list[Step]) -> list[int]:
    """Per step: consecutive observations at >= BREACH, UNKNOWN skipped, OK/WARN resetting."""
    runs, run = [], 0
    for status in effective(rules, steps):
        if status in (BREACH, CRITICAL):
            run += 1
        elif status is not UNKNOWN:
            run = 0
        runs.append(run)
    return runs


@settings(max_examples=200)
@given(RULES, STEPS)
def test_at_most_one_decision_per_incident_and_severity(rules: Rules, steps: list[Step]) -> None:
    counts = Counter((d.incident_id, d.severity) for _, d in run_steps(rules, steps))
    assert all(n == 1 for n in counts.values()), counts


@settings(max_examples=200)
@given(RULES, STEPS)
def test_breach_fires_only_after_trip_after_consecutive_failing_observations(
    rules: Rules, steps: list[Step]
) -> None:
    runs = breach_runs(rules, steps)
    for index, decision in run_steps(rules, steps):
        if decision.severity is BREACH:
            assert runs[index] >= rules.trip_after, (index, runs)


@settings(max_examples=200)
@given(RULES, STEPS)
def test_decisions_match_the_reference_model(rules: Rules, steps: list[Step]) -> None:
    actual = [(i, d.severity, d.incident_id) for i, d in run_steps(rules, steps)]
    assert actual == reference(rules, steps)


@settings(max_examples=200)
@given(RULES, STEPS)
def test_decisions_only_ever_engage_configured_actions(rules: Rules, steps: list[Step]) -> None:
    for _, decision in run_steps(rules, steps):
        assert decision.severity in SEVERITIES
        assert decision.actuators == rules.actions[decision.severity]
        assert decision.watchdog == "spx_ticks"


def confirmed_reference(rules: Rules, steps: list[Step]) -> list[Status]:
    """Per step: the highest severity whose run reached trip_after in the open incident (with
    or without actuators), OK once clear_after OKs ended it: what the breach alert follows."""
    runs = dict.fromkeys(SEVERITIES, 0)
    level, oks, open_ = OK, 0, False
    out = []
    for status in effective(rules, steps):
        if status is not UNKNOWN:
            runs = {sev: runs[sev] + 1 if status >= sev else 0 for sev in SEVERITIES}
        oks = oks + 1 if status is OK else 0
        open_ = open_ or status in SEVERITIES
        if open_:
            level = max([level, *(s for s in SEVERITIES if runs[s] >= rules.trip_after)])
        if open_ and oks >= rules.clear_after:
            level, open_ = OK, False
        out.append(level)
    return out


@settings(max_examples=200)
@given(RULES, STEPS)
def test_confirmed_follows_trip_after_and_holds_until_clear_after(
    rules: Rules, steps: list[Step]
) -> None:
    state, now, confirmed = PolicyState(), 0.0, []
    for item in steps:
        now += item.dt
        state, _ = step(rules, state, "spx_ticks", item.verdicts, now, Ids())
        confirmed.append(state.confirmed)
    assert confirmed == confirmed_reference(rules, steps)


def test_confirmed_rides_out_a_flapping_source() -> None:
    """A venue restarting: BREACH and OK alternate; trip_after 2 and clear_after 3 see one
    confirmed breach, not four."""
    run = Run(rules(trip_after=2, clear_after=3))
    levels = []
    for status in [OK, BREACH, BREACH, OK, BREACH, OK, OK, BREACH, OK, OK, OK, OK]:
        run.feed([status])
        levels.append(run.state.confirmed)
    assert levels == [OK, OK, BREACH, BREACH, BREACH, BREACH, BREACH, BREACH] + [BREACH] * 2 + [
        OK,
        OK,
    ]


@given(st.integers(min_value=2, max_value=500))
def test_an_error_every_subject_shares_is_said_once(subjects: int) -> None:
    """Redis down: every instrument is UNKNOWN for the same reason; the watchdog's reason
    (its journal line, STATUS) says that error once, not once per instrument."""
    error = "redis: Error 111 connecting to 127.0.0.1:6379. Connection refused."
    verdicts = [Verdict("spx_ticks", f"I{n}", UNKNOWN, error) for n in range(subjects)]
    state, _ = step(rules(), PolicyState(), "spx_ticks", verdicts, 1000.0, Ids())
    assert state.reason.count("Error 111") == 1
    assert state.reason == f"{error} ({subjects} subjects)"


def test_different_reasons_are_each_said() -> None:
    verdicts = [verdict(BREACH, "SPX"), verdict(BREACH, "ES"), verdict(BREACH, "NQ")]
    verdicts.append(verdict(BREACH, "RTY"))
    state, _ = step(rules(), PolicyState(), "spx_ticks", verdicts, 1000.0, Ids())
    assert state.reason == "SPX is BREACH; ES is BREACH; NQ is BREACH (+1 more)"

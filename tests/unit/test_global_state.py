"""derive_global_state: trading state, health and the one-line reason."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from supervisor.global_state import STATUS_MAX_CHARS, Engagement, derive_global_state
from supervisor.model import Health, Status, TradingState
from supervisor.publish.systemd import status_value
from supervisor.text import STATUS_LINE_MAX_CHARS

REASON = "breaker tripped by spx_ticks — SPX age 17.2s > 15s"


def engaged(*levels: TradingState) -> dict[str, Engagement]:
    return {
        f"act{i}": Engagement(level, f"{level.name} by act{i}") for i, level in enumerate(levels)
    }


@settings(max_examples=100)
@given(st.lists(st.sampled_from(list(TradingState)), max_size=4))
def test_trading_state_is_the_most_restrictive_engaged_level(levels: list[TradingState]) -> None:
    summary = derive_global_state(engaged(*levels), {}, [])
    assert summary.trading_state == max(levels, default=TradingState.ACTIVE)


@pytest.mark.parametrize(
    ("level", "problems", "status", "health"),
    [
        (TradingState.ACTIVE, [], Status.OK, Health.OK),
        (TradingState.REDUCE_ONLY, [], Status.BREACH, Health.OK),
        (TradingState.ACTIVE, ["redis unreachable"], Status.OK, Health.DEGRADED),
        (TradingState.ACTIVE, [], Status.UNKNOWN, Health.OK),
        (TradingState.REDUCE_ONLY, ["action failing"], Status.UNKNOWN, Health.DEGRADED),
        (TradingState.HALTED, ["redis unreachable"], Status.UNKNOWN, Health.HALTED),
        (TradingState.FLATTEN, [], Status.OK, Health.HALTED),
    ],
)
def test_health(level: TradingState, problems: list[str], status: Status, health: Health) -> None:
    active = engaged(level) if level is not TradingState.ACTIVE else {}
    summary = derive_global_state(active, {"spx": (status, "why")}, problems)
    assert summary.health is health


def test_an_unknown_watchdog_is_named_in_the_reason_not_a_supervisor_problem() -> None:
    summary = derive_global_state(
        {}, {"spx": (Status.UNKNOWN, "source down"), "es": (Status.OK, "")}, []
    )
    assert summary.problems == ()
    assert summary.reason == "1 of 2 watchdogs OK; spx UNKNOWN — source down"


def test_reason_names_the_engagement_at_the_trading_level() -> None:
    active = {
        "breaker": Engagement(TradingState.HALTED, REASON),
        "flag": Engagement(TradingState.REDUCE_ONLY, "reduce only by flag"),
    }
    summary = derive_global_state(active, {}, [])
    assert summary.reason == REASON


def test_reason_lists_failing_watchdogs_when_trading_is_active() -> None:
    watchdogs = {"spx": (Status.BREACH, "SPX age 17.2s > 15s"), "es": (Status.OK, "fine")}
    assert (
        derive_global_state({}, watchdogs, []).reason
        == "1 of 2 watchdogs OK; spx BREACH — SPX age 17.2s > 15s"
    )
    assert (
        derive_global_state({}, {"spx": watchdogs["spx"]}, []).reason
        == "spx BREACH — SPX age 17.2s > 15s"
    )
    assert derive_global_state({}, {"es": (Status.OK, "fine")}, []).reason == "1 of 1 watchdogs OK"


def test_status_line_has_the_reason_and_survives_non_ascii() -> None:
    summary = derive_global_state({"breaker": Engagement(TradingState.HALTED, REASON)}, {}, [])
    line = summary.status_line()
    assert line == f"HALTED: {REASON}"
    assert line.encode("utf-8").decode("utf-8") == line


def test_status_line_shows_problems_when_degraded() -> None:
    summary = derive_global_state({}, {"spx": (Status.UNKNOWN, "no verdicts — é")}, ["redis down"])
    line = summary.status_line()
    assert line == "ACTIVE: spx UNKNOWN — no verdicts — é | DEGRADED: redis down"
    long_line = derive_global_state({}, {}, ["x" * 1000]).status_line()
    assert len(status_value(long_line)) == STATUS_LINE_MAX_CHARS  # the notifier caps it


def test_a_watchdog_that_has_not_run_yet_is_starting_not_ok() -> None:
    state = derive_global_state({}, {}, [], waiting=2)
    assert state.reason == "starting: 0 of 2 watchdogs have run"
    state = derive_global_state({}, {"spx": (Status.WARN, "SPX age 11s")}, [], waiting=1)
    assert state.reason == "starting: 1 of 2 watchdogs have run; spx WARN — SPX age 11s"


def test_a_restored_state_says_so_in_the_status_line() -> None:
    state = derive_global_state(engaged(TradingState.REDUCE_ONLY), {}, [], restored=True)
    assert state.status_line().startswith("REDUCE_ONLY (restored): ")


def test_status_line_names_the_supervisors_problems_while_halted_too() -> None:
    """Health stays HALTED (the most urgent), but a failing kill API must not be hidden."""
    escalated = {"kill_flag": Engagement(TradingState.HALTED, "kill_flag tripped by spx")}
    summary = derive_global_state(escalated, {}, ["action kill_api: failing"])
    assert summary.health is Health.HALTED
    assert summary.status_line() == (
        "HALTED: kill_flag tripped by spx | DEGRADED: action kill_api: failing"
    )


def test_a_long_reason_is_shortened_before_the_supervisors_problems() -> None:
    watchdogs = {f"w{i}": (Status.UNKNOWN, "x" * 80) for i in range(8)}
    problems = ["watchdog w7: checks cut off after 300ms"]
    line = derive_global_state({}, watchdogs, problems).status_line()
    assert len(line) == STATUS_MAX_CHARS
    assert line.endswith("… | DEGRADED: watchdog w7: checks cut off after 300ms")
    assert derive_global_state({}, watchdogs, []).status_line().endswith("…")

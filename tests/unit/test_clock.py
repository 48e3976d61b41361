"""The daemon's clock: which time to believe (`decide`, `second_opinion`, property-tested),
and the clock built on them: a wrong step moves neither ages nor deadlines, a small
correction is followed within a bounded time, a confirmed one at once."""

from __future__ import annotations

import logging

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from supervisor.clock import (
    AGREE_S,
    SETTLE_S,
    SLEW_RATE,
    STEP_S,
    KernelNtp,
    Opinion,
    SteadyClock,
    decide,
    second_opinion,
)
from supervisor.daemon.clock_reference import offset_problem

seconds = st.floats(min_value=-86_400, max_value=86_400, allow_nan=False)
durations = st.floats(min_value=0, max_value=3600, allow_nan=False)
opinions = st.sampled_from(Opinion)


class Clocks:
    def __init__(self) -> None:
        self.wall = 1_800_000_000.0
        self.mono = 1000.0
        self.synced: bool | None = None

    def advance(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds


def steady(clocks: Clocks) -> SteadyClock:
    return SteadyClock(
        wall=lambda: clocks.wall,
        monotonic=lambda: clocks.mono,
        kernel_synced=lambda _mono: clocks.synced,
    )


# --- the decision --------------------------------------------------------------------------


@given(seconds, durations, durations, opinions)
def test_a_move_never_overshoots_nor_goes_away_from_the_system_clock(
    disagreement: float, held: float, elapsed: float, opinion: Opinion
) -> None:
    move = decide(disagreement, held, elapsed, opinion)
    assert abs(move.by_s) <= abs(disagreement)
    assert move.by_s * disagreement >= 0


@given(seconds, durations, durations)
def test_a_refuted_step_is_never_followed(disagreement: float, held: float, elapsed: float) -> None:
    assert decide(disagreement, held, elapsed, Opinion.REFUTES).by_s == 0


@given(seconds.filter(lambda s: abs(s) > AGREE_S), durations, durations)
def test_a_confirmed_step_is_believed_at_once(
    disagreement: float, held: float, elapsed: float
) -> None:
    assert decide(disagreement, held, elapsed, Opinion.CONFIRMS).by_s == disagreement


@given(
    seconds.filter(lambda s: abs(s) > STEP_S),
    st.floats(min_value=0, max_value=SETTLE_S, exclude_max=True),
    durations,
)
def test_an_unconfirmed_large_step_waits_until_it_has_held(
    disagreement: float, held: float, elapsed: float
) -> None:
    assert decide(disagreement, held, elapsed, Opinion.NONE).by_s == 0
    assert decide(disagreement, SETTLE_S, elapsed, Opinion.NONE).by_s == disagreement


@given(
    st.floats(min_value=-STEP_S, max_value=STEP_S).filter(lambda s: abs(s) > AGREE_S),
    st.floats(min_value=0.001, max_value=2.0),
)
def test_an_unconfirmed_small_step_is_followed_at_a_bounded_rate_and_converges(
    disagreement: float, period: float
) -> None:
    """Called every `period`, it agrees within STEP_S / SLEW_RATE (10 s) plus one period,
    and never moves faster than SLEW_RATE."""
    remaining, waited = disagreement, 0.0
    while abs(remaining) > AGREE_S:
        move = decide(remaining, 0.0, period, Opinion.NONE)
        assert abs(move.by_s) <= SLEW_RATE * period + 1e-12
        remaining -= move.by_s
        waited += period
        assert waited <= STEP_S / SLEW_RATE + period + 1e-9


@given(seconds.filter(lambda s: abs(s) > AGREE_S), st.floats(min_value=0, max_value=0.01))
def test_redis_confirms_the_clock_it_agrees_with_and_refutes_the_other(
    disagreement: float, uncertainty: float
) -> None:
    # Redis' clock is a little off itself: `skew` (less than a quarter of the step).
    skew = disagreement / 8
    assume(abs(disagreement) / 2 > abs(skew) + uncertainty)  # a reading good enough to tell
    new_time_right = second_opinion(disagreement, disagreement + skew, uncertainty, None)
    old_time_right = second_opinion(disagreement, skew, uncertainty, True)
    assert new_time_right is Opinion.CONFIRMS
    assert old_time_right is Opinion.REFUTES  # Redis outranks the kernel


@given(seconds, st.floats(min_value=0, max_value=10))
def test_without_redis_only_a_synchronised_kernel_confirms(
    disagreement: float, uncertainty: float
) -> None:
    assert second_opinion(disagreement, None, uncertainty, True) is Opinion.CONFIRMS
    assert second_opinion(disagreement, None, uncertainty, False) is Opinion.NONE
    assert second_opinion(disagreement, None, uncertainty, None) is Opinion.NONE


@given(seconds, seconds)
def test_a_redis_sample_too_uncertain_to_tell_gives_no_opinion(
    disagreement: float, reference: float
) -> None:
    assert second_opinion(disagreement, reference, abs(disagreement), None) is Opinion.NONE


# --- the clock -----------------------------------------------------------------------------


def test_it_follows_the_wall_clock_while_nothing_steps() -> None:
    clocks = Clocks()
    clock = steady(clocks)
    for _ in range(10):
        clocks.advance(1.5)
        assert clock() == clocks.wall


@given(st.floats(min_value=-86_400, max_value=86_400).filter(lambda s: abs(s) > STEP_S))
def test_a_step_moves_nothing_until_it_has_held(step_s: float) -> None:
    clocks = Clocks()
    clock = steady(clocks)
    before = clock()
    clocks.wall += step_s  # the system clock jumps; no real time passed
    assert clock() == before
    clocks.advance(10)
    assert clock() == before + 10  # ages grow by real time only
    clocks.advance(SETTLE_S)
    assert abs(clock() - clocks.wall) < 1e-6  # held long enough: believed


def test_a_step_that_is_undone_is_forgotten() -> None:
    clocks = Clocks()
    clock = steady(clocks)
    clocks.wall += 3600
    start = clock()
    clocks.advance(SETTLE_S / 2)
    clocks.wall -= 3600  # stepped back before it settled
    assert clock() == start + SETTLE_S / 2
    clocks.advance(SETTLE_S)
    assert clock() == clocks.wall


@pytest.mark.parametrize("step_s", [-0.9, 0.9, -0.4])
def test_a_small_correction_is_followed_within_ten_seconds_and_logged_once(
    step_s: float, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "supervisor.clock")
    clocks = Clocks()
    clock = steady(clocks)
    clocks.wall += step_s
    previous = clock()
    for _ in range(200):  # 20 s of calls every 100 ms
        clocks.advance(0.1)
        now = clock()
        assert 0.1 * (1 - SLEW_RATE) - 1e-6 <= now - previous <= 0.1 * (1 + SLEW_RATE) + 1e-6
        previous = now
        if clocks.mono - 1000 >= STEP_S / SLEW_RATE + 0.1:
            assert abs(now - clocks.wall) <= AGREE_S
    messages = [record.getMessage() for record in caplog.records]
    print(messages)
    assert len(messages) == 2
    assert f"system clock stepped by {step_s:+.3f}s" in messages[0]
    assert f"daemon clock corrected by {step_s:+.3f}s" in messages[1]


def test_redis_confirming_a_small_correction_makes_it_believed_at_once() -> None:
    clocks = Clocks()
    clock = steady(clocks)
    clocks.wall -= 0.9  # the host was 0.9 s ahead of Redis and NTP corrects it
    clock.observe_reference(clocks.wall, clocks.mono - 0.001, clocks.mono + 0.001)
    assert clock() == clocks.wall


def test_redis_refuting_a_step_keeps_the_daemon_clock_however_long_it_holds() -> None:
    clocks = Clocks()
    clock = steady(clocks)
    truth = clocks.wall
    clocks.wall += 3600
    clocks.synced = True  # the kernel would believe it; Redis outranks it
    for _ in range(4):
        clocks.advance(SETTLE_S / 2)
        truth += SETTLE_S / 2
        clock.observe_reference(truth, clocks.mono - 0.001, clocks.mono + 0.001)
        assert clock() == pytest.approx(truth)


def test_a_synchronised_kernel_confirms_a_large_step_without_redis() -> None:
    clocks = Clocks()
    clock = steady(clocks)
    clocks.wall += 3600
    assert clock() == clocks.wall - 3600
    clocks.synced = True
    assert clock() == clocks.wall


def test_the_reference_offset_is_round_trip_corrected_and_keeps_the_fastest_sample() -> None:
    clocks = Clocks()
    clock = steady(clocks)
    redis_ahead = 0.25
    # A slow round trip whose answer came early in it (it would read +0.15), then a fast one.
    clock.observe_reference(clocks.wall + redis_ahead - 0.1, clocks.mono - 0.2, clocks.mono)
    clock.observe_reference(clocks.wall + redis_ahead, clocks.mono - 0.001, clocks.mono + 0.001)
    clocks.advance(1)
    offset, uncertainty = clock.reference_offset() or (None, None)
    assert offset == pytest.approx(redis_ahead)
    assert uncertainty == pytest.approx(0.001)
    clocks.advance(60)  # the window has passed: no sample, no offset
    assert clock.reference_offset() is None


def test_the_kernel_is_asked_through_adjtimex_and_a_refusal_stops_the_asking() -> None:
    kernel = KernelNtp()
    if kernel.problem is not None:
        pytest.skip(f"adjtimex cannot be called here: {kernel.problem}")
    assert kernel.synced(10.0) in (True, False)  # this host's real state
    calls = []

    def refused(_timex: object) -> int:  # what ProtectClock=yes makes of it (EPERM)
        calls.append(1)
        return -1

    kernel._adjtimex = refused
    assert kernel.synced(20.0) is None
    assert str(getattr(kernel, "problem", "")).startswith("adjtimex: ")
    assert kernel.synced(30.0) is None and len(calls) == 1


@given(
    st.floats(min_value=-3600, max_value=3600),
    st.floats(min_value=0, max_value=1),
    st.floats(min_value=0.01, max_value=60),
)
def test_health_is_degraded_only_when_the_offset_surely_exceeds_the_limit(
    offset: float, uncertainty: float, limit: float
) -> None:
    problem = offset_problem((offset, uncertainty), limit)
    assert (problem is not None) == (abs(offset) - uncertainty > limit)
    if problem is not None:
        assert f"{offset:+.3f}s" in problem
    assert offset_problem(None, limit) is None  # not measured: Redis' own trouble says it


def test_a_reading_that_was_preempted_decides_nothing() -> None:
    """The thread lost the CPU for 20 ms right after reading the wall clock: against the
    middle of the monotonic readings the wall clock looks 10 ms behind. That is no step:
    nothing moves, nothing is said, even with a second opinion that confirms anything."""
    clocks = Clocks()
    stall = [0.0]
    calls = [0]

    def monotonic() -> float:
        calls[0] += 1
        return clocks.mono + (stall[0] if calls[0] % 2 == 0 else 0.0)  # the second read

    clock = SteadyClock(
        wall=lambda: clocks.wall, monotonic=monotonic, kernel_synced=lambda _mono: True
    )
    clocks.advance(1)
    stall[0] = 0.02
    assert clock() == pytest.approx(clocks.wall + 0.01)  # the middle of the reading
    stall[0] = 0.0
    assert clock() == pytest.approx(clocks.wall)  # nothing was moved

"""The steady clock: a step of the system clock moves neither ages nor deadlines, until it
has held long enough to be believed."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from supervisor.clock import SETTLE_S, STEP_S, SteadyClock


class Clocks:
    def __init__(self) -> None:
        self.wall = 1_800_000_000.0
        self.mono = 1000.0

    def advance(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds


def steady(clocks: Clocks) -> SteadyClock:
    return SteadyClock(wall=lambda: clocks.wall, monotonic=lambda: clocks.mono)


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

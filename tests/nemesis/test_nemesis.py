"""The randomized nemesis, a short schedule: two daemons with `[ha]` over one real Redis and
PostgreSQL, a feed going stale and recovering, a logging kill endpoint, random faults; the
checker's invariants must all hold (docs/development.md, "Nemesis").

The seed is fixed so CI is repeatable; NEMESIS_SEED picks another, NEMESIS_FAULTS another
comma-separated subset (`all` for every kind). A failure prints the seed and the schedule:
`python -m testbed.nemesis --seed S --duration 150s --faults ...` re-runs the same schedule.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from testbed.nemesis.report import figures, run
from testbed.nemesis.schedule import ALL_FAULTS, make_schedule
from testbed.nemesis.stack import environment_problem

pytestmark = pytest.mark.slow

SEED = int(os.environ.get("NEMESIS_SEED") or 20261206)
DURATION_S = 150.0
# Fault kinds left out while a defect they expose has no fix yet (issue 16's garbage,
# garbage_file and duplicate_id are fixed: none is left out).
PENDING: tuple[str, ...] = ()
# Invariants a known, named defect still violates (printed as KNOWN DEFECT, not failing the
# test). None now: a defect found goes here with its seed until it is fixed.
KNOWN: dict[str, str] = {}


def faults() -> tuple[str, ...]:
    chosen = os.environ.get("NEMESIS_FAULTS")
    if chosen:
        return ALL_FAULTS if chosen == "all" else tuple(chosen.split(","))
    return tuple(kind for kind in ALL_FAULTS if kind not in PENDING)


@pytest.mark.timeout(DURATION_S + 180)
def test_a_short_random_schedule_violates_no_invariant(tmp_path: Path) -> None:
    problem = environment_problem()
    if problem is not None:
        pytest.skip(problem)
    schedule = make_schedule(SEED, DURATION_S, faults())
    result = run(schedule, tmp_path, say=print)
    print(figures(result))
    assert result.history.windows, "the schedule ran no incident"
    assert result.history.venue and result.history.breaker, "nothing ever tripped"
    for verdict in result.verdicts:
        if verdict.violations and verdict.invariant in KNOWN:
            print(
                f"KNOWN DEFECT, not failing the test: {verdict.invariant}:"
                f" {KNOWN[verdict.invariant]}"
            )
    failing = sum(len(v.violations) for v in result.verdicts if v.invariant not in KNOWN)
    assert failing == 0, (
        f"seed {SEED} violated the invariants; the schedule:\n{schedule.describe()}\n"
        f"{figures(result)}\nhistory: {tmp_path / 'history.json'}"
    )

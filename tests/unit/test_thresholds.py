"""judge_above: worse as the value grows; equal to a threshold does not cross it. The verdicts
built on it (value_verdict, age_verdict) say the same status, threshold and deadline."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from supervisor.constants import DEADLINE_EPSILON_S
from supervisor.model import Status
from supervisor.watchdogs.thresholds import AgeLevels, age_verdict, judge_above, value_verdict

LEVELS = (Status.WARN, Status.BREACH, Status.CRITICAL)
FINITE = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False)
Thresholds = tuple[float | None, float | None, float | None]


@st.composite
def ordered_thresholds(draw: st.DrawFn) -> Thresholds:
    """Strictly increasing warn < breach < critical, each possibly unset (as config allows)."""
    values = sorted(draw(st.sets(FINITE, min_size=3, max_size=3)))
    keep = draw(st.tuples(st.booleans(), st.booleans(), st.booleans()))
    warn, breach, critical = (v if k else None for v, k in zip(values, keep, strict=True))
    return warn, breach, critical


def set_thresholds(thresholds: Thresholds) -> list[tuple[Status, float]]:
    return [(lvl, t) for lvl, t in zip(LEVELS, thresholds, strict=True) if t is not None]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (5.0, (Status.OK, None, 10.0)),
        (10.0, (Status.OK, None, 10.0)),
        (10.5, (Status.WARN, 10.0, 15.0)),
        (15.0, (Status.WARN, 10.0, 15.0)),
        (17.2, (Status.BREACH, 15.0, 30.0)),
        (30.0, (Status.BREACH, 15.0, 30.0)),
        (31.0, (Status.CRITICAL, 30.0, None)),
    ],
)
def test_judge_above_examples(value: float, expected: tuple[Status, float | None, object]) -> None:
    judgement = judge_above(value, 10.0, 15.0, 30.0)
    assert (judgement.status, judgement.threshold, judgement.next_threshold) == expected


def test_unset_levels_are_skipped() -> None:
    judgement = judge_above(20.0, None, 15.0, None)
    assert (judgement.status, judgement.threshold, judgement.next_threshold) == (
        Status.BREACH,
        15.0,
        None,
    )
    assert judge_above(1.0, None, None, None).status is Status.OK


@settings(max_examples=200)
@given(ordered_thresholds(), FINITE, FINITE)
def test_status_is_monotonic_in_the_value(thresholds: Thresholds, a: float, b: float) -> None:
    low, high = sorted((a, b))
    assert judge_above(low, *thresholds).status <= judge_above(high, *thresholds).status


@settings(max_examples=200)
@given(ordered_thresholds())
def test_equal_to_a_threshold_does_not_cross_it(thresholds: Thresholds) -> None:
    for level, threshold in set_thresholds(thresholds):
        assert judge_above(threshold, *thresholds).status < level
        above = math.nextafter(threshold, math.inf)
        assert judge_above(above, *thresholds).status >= level


@settings(max_examples=200)
@given(ordered_thresholds(), FINITE)
def test_crossed_and_next_thresholds(thresholds: Thresholds, value: float) -> None:
    judgement = judge_above(value, *thresholds)
    crossed = [(lvl, t) for lvl, t in set_thresholds(thresholds) if value > t]
    upcoming = [t for _, t in set_thresholds(thresholds) if t >= value]
    assert judgement.status == (crossed[-1][0] if crossed else Status.OK)
    assert judgement.threshold == (crossed[-1][1] if crossed else None)
    assert judgement.next_threshold == min(upcoming, default=None)


@dataclass(frozen=True)
class Rules:
    warn: float | None
    breach: float | None
    critical: float | None
    direction: str = "above"


def test_value_verdict_names_label_detail_and_threshold_unit() -> None:
    rules = Rules(1.0, 10.0, 100.0)
    verdict = value_verdict("pq", "poison", 12.0, rules, "rows", label="poison queue")
    assert (verdict.subject, verdict.status) == ("poison", Status.BREACH)
    assert verdict.reason == "poison queue 12 rows > 10 rows"
    bare = value_verdict("pq", "poison", 12.0, rules, "rows", threshold_unit="", detail=" (x)")
    assert bare.reason == "poison 12 rows > 10 (x)"
    calm = value_verdict("pq", "poison", 1.0, rules, "rows", detail=" (x)")
    assert (calm.status, calm.reason, calm.threshold) == (Status.OK, "poison 1 rows (x)", 10.0)


@settings(max_examples=200)
@given(ordered_thresholds().filter(lambda t: t[1] is not None), FINITE, FINITE)
def test_age_verdict_judges_like_judge_above(
    thresholds: Thresholds, age: float, since: float
) -> None:
    verdict = age_verdict("w", "key", "key age", age, since, AgeLevels(*thresholds), " [note]")
    judgement = judge_above(age, *thresholds)
    assert (verdict.status, verdict.value, verdict.unit) == (judgement.status, age, "s")
    assert verdict.threshold == (
        judgement.threshold if judgement.threshold is not None else thresholds[1]
    )
    assert verdict.reason.startswith("key age") and verdict.reason.endswith(" [note]")
    assert (" > " in verdict.reason) == (judgement.threshold is not None)
    if judgement.next_threshold is None:
        assert verdict.deadline is None
    else:
        assert verdict.deadline == since + judgement.next_threshold + DEADLINE_EPSILON_S

"""Whatever a query returns, poison_queue and sql_value answer with verdicts, never raise."""

from __future__ import annotations

import asyncio
import math
import time
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from supervisor.errors import SourceError
from supervisor.model import Status, Verdict
from supervisor.watchdogs.poison_queue import PoisonQueue, PoisonQueueConfig, to_count, to_epoch
from supervisor.watchdogs.sql_value import Reading, SqlValue, SqlValueConfig, first_value, to_number
from supervisor.watchdogs.thresholds import judge_above

NOW = 1_795_000_000.0

VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(),
    st.decimals(),
    st.text(),
    st.binary(),
    st.datetimes(timezones=st.none() | st.timezones()),
    st.dates(),
    st.times(),
    st.timedeltas(),
    st.uuids(),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.just(Decimal("sNaN")),
    st.just(Decimal("-Infinity")),
)
ROWS = st.one_of(st.none(), st.lists(VALUES, max_size=3).map(tuple), VALUES)


class FakeSource:
    """Answers every query with the given row (or raises the given SourceError)."""

    def __init__(self, *rows: object) -> None:
        self.rows = list(rows)

    async def fetch_row(self, query: str, timeout_s: float) -> object:
        row = self.rows.pop(0)
        if isinstance(row, SourceError):
            raise row
        return row


def poison(source: FakeSource, **overrides: Any) -> PoisonQueue:
    fields: dict[str, Any] = {"name": "pq", "kind": "poison_queue", "query": "q"}
    fields |= {"warn": 0, "breach": 10, "oldest_query": "o", "oldest_breach": "1h"}
    return PoisonQueue(PoisonQueueConfig.model_validate({**fields, **overrides}), source)


def sql_value(source: FakeSource, **overrides: Any) -> SqlValue:
    fields: dict[str, Any] = {"name": "v", "kind": "sql_value", "query": "q", "breach": 5}
    return SqlValue(SqlValueConfig.model_validate({**fields, **overrides}), source)


def assert_sane(verdicts: list[Verdict], subjects: list[str]) -> None:
    assert [v.subject for v in verdicts] == subjects
    for verdict in verdicts:
        assert isinstance(verdict.status, Status)
        assert verdict.reason
        assert verdict.value is None or math.isfinite(verdict.value)
        if verdict.status is Status.UNKNOWN:
            assert verdict.value is None
        else:  # judged only on a number read from the row: anything else is UNKNOWN
            assert verdict.status is Status.OK or verdict.value is not None


@settings(max_examples=300, deadline=None)
@given(count_row=ROWS, oldest_row=ROWS)
def test_poison_queue_answers_any_rows_with_verdicts(count_row: object, oldest_row: object) -> None:
    dog = poison(FakeSource(count_row, oldest_row))
    verdicts = asyncio.run(dog.check(NOW, None))
    assert_sane(verdicts, ["poison", "oldest"])


@settings(max_examples=300, deadline=None)
@given(row=ROWS, direction=st.sampled_from(["above", "below"]))
def test_sql_value_answers_any_row_with_a_verdict(row: object, direction: str) -> None:
    dog = sql_value(FakeSource(row), direction=direction)
    assert_sane(asyncio.run(dog.check(NOW, None)), ["v"])


@given(raw=VALUES)
def test_parsers_raise_only_value_errors(raw: object) -> None:
    for parse in (to_number, to_count, to_epoch, first_value):
        try:
            result = parse(raw)
        except ValueError:
            continue
        if parse is not first_value:
            assert isinstance(result, float) and math.isfinite(result)


@given(count=st.integers(min_value=0, max_value=10**6))
def test_a_count_is_judged_like_any_threshold(count: int) -> None:
    dog = poison(FakeSource())
    verdict = dog.judge_count(Reading(count))
    assert verdict.status is judge_above(count, 0, 10, None).status
    assert verdict.value == count


@given(age_s=st.floats(min_value=0, max_value=10 * 86400))
def test_oldest_age_is_judged_from_an_aware_timestamp(age_s: float) -> None:
    from datetime import UTC, datetime

    at = datetime.fromtimestamp(NOW - age_s, UTC)
    verdict = poison(FakeSource()).judge_oldest(Reading(at), 1.0, NOW)
    assert verdict.value == pytest.approx(age_s, abs=1e-5)
    assert verdict.status is (Status.BREACH if NOW - at.timestamp() > 3600 else Status.OK)


def test_a_source_error_is_unknown_for_its_subject_only() -> None:
    source = FakeSource((3,), SourceError("postgres: ConnectionRefusedError: refused"))
    verdicts = asyncio.run(poison(source).check(time.time(), None))
    assert [v.status for v in verdicts] == [Status.WARN, Status.UNKNOWN]
    assert verdicts[1].reason == "oldest poison row: postgres: ConnectionRefusedError: refused"

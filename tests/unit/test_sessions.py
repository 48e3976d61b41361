"""Session calendars built from config: open/closed at exact instants, DST, midnight crossing."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from supervisor.config.sections import SessionConfig
from supervisor.sessions import Session

NY = ZoneInfo("America/New_York")
LONDON = ZoneInfo("Europe/London")
MON_FRI = ["mon", "tue", "wed", "thu", "fri"]
HOUR = 3600.0


def build(**fields: Any) -> Session:
    return SessionConfig(**fields).build("test")


def us_equities() -> Session:
    return build(
        timezone="America/New_York",
        days=MON_FRI,
        open=time(9, 30),
        close=time(16, 0),
        holidays=[date(2026, 12, 25)],
    )


def fx_24h() -> Session:
    """Sunday 17:00 to Friday 17:00 New York: each session runs 17:00 -> 17:00 next day."""
    days = ["sun", "mon", "tue", "wed", "thu"]
    return build(timezone="America/New_York", days=days, open=time(17), close=time(17))


def overnight(holidays: list[date] | None = None) -> Session:
    return build(
        timezone="Europe/London",
        days=MON_FRI,
        open=time(22),
        close=time(6),
        holidays=holidays or [],
    )


def every_day_24h() -> Session:
    days = [*MON_FRI, "sat", "sun"]
    return build(timezone="America/New_York", days=days, open=time(17), close=time(17))


def at(tz: ZoneInfo, y: int, m: int, d: int, hh: int = 0, mm: int = 0, ss: int = 0) -> float:
    return datetime(y, m, d, hh, mm, ss, tzinfo=tz).timestamp()


def utc(y: int, m: int, d: int, hh: int = 0, mm: int = 0, ss: int = 0) -> float:
    return datetime(y, m, d, hh, mm, ss, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("instant", "opened"),
    [
        (at(NY, 2026, 6, 1, 9, 30), at(NY, 2026, 6, 1, 9, 30)),  # the open instant is open
        (at(NY, 2026, 6, 1, 15, 59, 59), at(NY, 2026, 6, 1, 9, 30)),
        (at(NY, 2026, 6, 1, 16, 0), None),  # the close instant is closed
        (at(NY, 2026, 6, 1, 9, 29, 59), None),
        (at(NY, 2026, 6, 6, 12, 0), None),  # Saturday
        (at(NY, 2026, 6, 7, 12, 0), None),  # Sunday
        (at(NY, 2026, 12, 24, 12, 0), at(NY, 2026, 12, 24, 9, 30)),
        (at(NY, 2026, 12, 25, 12, 0), None),  # holiday
        # Monday after US DST start (2026-03-08): 09:30 EDT is 13:30 UTC.
        (utc(2026, 3, 9, 13, 30), utc(2026, 3, 9, 13, 30)),
        (utc(2026, 3, 9, 13, 29, 59), None),
        (utc(2026, 3, 9, 19, 59, 59), utc(2026, 3, 9, 13, 30)),
        (utc(2026, 3, 9, 20, 0), None),
        # The Friday before, still EST: 09:30 is 14:30 UTC.
        (utc(2026, 3, 6, 14, 29, 59), None),
        (utc(2026, 3, 6, 14, 30), utc(2026, 3, 6, 14, 30)),
        # Monday after US DST end (2026-11-01): 09:30 EST is 14:30 UTC.
        (utc(2026, 11, 2, 14, 29, 59), None),
        (utc(2026, 11, 2, 14, 30), utc(2026, 11, 2, 14, 30)),
        (utc(2026, 11, 2, 20, 59, 59), utc(2026, 11, 2, 14, 30)),
        (utc(2026, 11, 2, 21, 0), None),
    ],
)
def test_us_equities(instant: float, opened: float | None) -> None:
    session = us_equities()
    assert session.opened_at(instant) == opened
    assert session.is_open(instant) is (opened is not None)


@pytest.mark.parametrize(
    ("instant", "opened"),
    [
        (at(NY, 2026, 6, 7, 16, 59, 59), None),  # Sunday before the open
        (at(NY, 2026, 6, 7, 17, 0), at(NY, 2026, 6, 7, 17, 0)),
        (at(NY, 2026, 6, 8, 3, 0), at(NY, 2026, 6, 7, 17, 0)),  # after midnight: Sunday's
        (at(NY, 2026, 6, 8, 17, 0), at(NY, 2026, 6, 8, 17, 0)),  # back to back: Monday's
        (at(NY, 2026, 6, 12, 16, 59, 59), at(NY, 2026, 6, 11, 17, 0)),  # Friday: Thursday's
        (at(NY, 2026, 6, 12, 17, 0), None),
        (at(NY, 2026, 6, 13, 12, 0), None),  # Saturday
        # Across US DST start (Sunday 2026-03-08): opened 17:00 EDT = 21:00 UTC.
        (utc(2026, 3, 9, 20, 59, 59), utc(2026, 3, 8, 21, 0)),
    ],
)
def test_24_hour_session_crossing_midnight(instant: float, opened: float | None) -> None:
    assert fx_24h().opened_at(instant) == opened


def test_24_hour_session_over_dst_end_lasts_25_hours() -> None:
    session = every_day_24h()
    opened = at(NY, 2026, 10, 31, 17, 0)  # EDT
    assert session.opened_at(at(NY, 2026, 11, 1, 16, 59, 59)) == opened  # EST
    assert session.opened_at(opened + 25 * HOUR - 1) == opened
    assert session.opened_at(opened + 25 * HOUR) == opened + 25 * HOUR


@pytest.mark.parametrize(
    ("instant", "opened"),
    [
        (at(LONDON, 2026, 6, 1, 21, 59, 59), None),
        (at(LONDON, 2026, 6, 1, 22, 0), at(LONDON, 2026, 6, 1, 22, 0)),
        (at(LONDON, 2026, 6, 2, 2, 0), at(LONDON, 2026, 6, 1, 22, 0)),  # Tuesday 02:00
        (at(LONDON, 2026, 6, 2, 6, 0), None),
        (at(LONDON, 2026, 6, 3, 12, 0), None),
        (at(LONDON, 2026, 6, 6, 5, 59, 59), at(LONDON, 2026, 6, 5, 22, 0)),  # Sat: Friday's
        (at(LONDON, 2026, 6, 6, 22, 0), None),  # Saturday is not a session day
        (at(LONDON, 2026, 6, 1, 2, 0), None),  # Monday 02:00: Sunday had no session
    ],
)
def test_overnight_session(instant: float, opened: float | None) -> None:
    assert overnight().opened_at(instant) == opened


@pytest.mark.parametrize(
    ("instant", "opened"),
    [
        (at(LONDON, 2026, 12, 23, 3, 0), at(LONDON, 2026, 12, 22, 22, 0)),  # Tuesday's
        (at(LONDON, 2026, 12, 23, 23, 0), None),  # the holiday's own session
        (at(LONDON, 2026, 12, 24, 3, 0), None),
        (at(LONDON, 2026, 12, 24, 23, 0), at(LONDON, 2026, 12, 24, 22, 0)),
    ],
)
def test_a_holiday_cancels_only_the_session_opening_that_date(
    instant: float, opened: float | None
) -> None:
    assert overnight(holidays=[date(2026, 12, 23)]).opened_at(instant) == opened


SESSIONS = {
    "us_equities": us_equities(),
    "fx_24h": fx_24h(),
    "overnight": overnight(holidays=[date(2026, 12, 23)]),
    "every_day_24h": every_day_24h(),
}
YEAR_2026 = st.floats(min_value=utc(2026, 1, 1), max_value=utc(2027, 1, 1), allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(SESSIONS)), YEAR_2026)
def test_opened_at_agrees_with_is_open(name: str, instant: float) -> None:
    session = SESSIONS[name]
    opened = session.opened_at(instant)
    assert session.is_open(instant) is (opened is not None)
    if opened is not None:
        assert opened <= instant
        assert instant - opened < 25 * HOUR
        local = datetime.fromtimestamp(opened, session.timezone)
        assert local.time() == session.open
        assert local.weekday() in session.days
        assert local.date() not in session.holidays


@settings(max_examples=200, deadline=None)
@given(YEAR_2026)
def test_us_equities_is_open_iff_local_weekday_hours(instant: float) -> None:
    local = datetime.fromtimestamp(instant, NY)
    expected = (
        local.weekday() < 5
        and local.date() != date(2026, 12, 25)
        and time(9, 30) <= local.time() < time(16, 0)
    )
    assert us_equities().is_open(instant) is expected


def test_session_days_are_weekday_numbers() -> None:
    assert fx_24h().days == frozenset({6, 0, 1, 2, 3})
    assert us_equities().holidays == frozenset({date(2026, 12, 25)})
    assert overnight().crosses_midnight and not us_equities().crosses_midnight

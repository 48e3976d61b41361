"""Market session calendars: is the market open at a given instant, and since when?

A session opens on each listed weekday at `open` (local time in `timezone`) and closes at
`close`; when `close` is not after `open` it closes the next day (FX and futures sessions
that cross midnight; `open == close` is a 24-hour session). A holiday cancels the session
that would open on that local date.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class Session:
    name: str
    timezone: ZoneInfo
    days: frozenset[int]  # 0 = Monday, as datetime.weekday()
    open: time
    close: time
    holidays: frozenset[date]

    @property
    def crosses_midnight(self) -> bool:
        return self.close <= self.open

    def opened_at(self, now: float) -> float | None:
        """Epoch seconds at which the session containing `now` opened; None when closed."""
        local_day = datetime.fromtimestamp(now, self.timezone).date()
        # A session that crosses midnight may have opened yesterday.
        for day in (local_day, local_day - timedelta(days=1)):
            window = self._window(day)
            if window and window[0] <= now < window[1]:
                return window[0]
        return None

    def is_open(self, now: float) -> bool:
        return self.opened_at(now) is not None

    def _window(self, day: date) -> tuple[float, float] | None:
        if day.weekday() not in self.days or day in self.holidays:
            return None
        close_day = day + timedelta(days=1) if self.crosses_midnight else day
        opens = datetime.combine(day, self.open, self.timezone).timestamp()
        closes = datetime.combine(close_day, self.close, self.timezone).timestamp()
        return opens, closes

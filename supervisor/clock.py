"""The daemon's clock: wall-clock time that a step of the system clock does not move.

Ages compare "now" with timestamps other hosts wrote (ticks, breaker updates), so "now" must
be wall time. But a step of this host's clock (an NTP step, a VM resumed, `date -s`) must not
make every tick look an hour old (a false kill switch) or an hour young (a blind protector).
So now = the wall time at an anchor + the monotonic time since. The system clock is watched:
when it disagrees by more than STEP_S, that is logged at once; only when the disagreement has
held for SETTLE_S is the system clock believed (the host was wrong and has been corrected)
and the anchor moved. Slews (NTP's gentle corrections) move the monotonic clock too.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

STEP_S = 1.0  # a disagreement larger than this is a step, not jitter
SETTLE_S = 300.0  # believe a stepped system clock once it has held this long


class SteadyClock:
    def __init__(
        self,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._wall = wall
        self._monotonic = monotonic
        self._anchor_wall = wall()
        self._anchor_mono = monotonic()
        self._stepped_since: float | None = None  # monotonic time the disagreement began

    def __call__(self) -> float:
        mono = self._monotonic()
        steady = self._anchor_wall + (mono - self._anchor_mono)
        step_s = self._wall() - steady
        if abs(step_s) <= STEP_S:
            self._stepped_since = None
            return steady
        if self._stepped_since is None:
            self._stepped_since = mono
            log.warning(
                "system clock stepped by %+.1fs: ages keep the steady clock; the new time is"
                " believed if it holds for %.0fs",
                step_s,
                SETTLE_S,
            )
        elif mono - self._stepped_since >= SETTLE_S:
            log.warning("system clock step of %+.1fs has held: believing it", step_s)
            self._anchor_wall, self._anchor_mono = steady + step_s, mono
            self._stepped_since = None
            return steady + step_s
        return steady

    def offset_s(self) -> float:
        """How far the system clock is from this one now (0 unless a step is settling)."""
        return self._wall() - self()

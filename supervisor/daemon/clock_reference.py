"""Redis' TIME against the daemon's clock, once a second.

Ages compare the producers' timestamps with this daemon's clock; the producers write to this
Redis, so its TIME is the nearest thing to their clock this daemon can read. Each reading is
round-trip corrected (Redis answered somewhere in the round trip: its middle, give or take
half of it), and the fastest round trip of the last 30 s is kept (supervisor/clock.py). The
offset is a gauge, a line of `status`, and the second opinion the clock asks when the system
clock steps. Beyond `[supervisor]
max_clock_offset` (250 ms: a tenth of a typical freshness threshold, where NTP keeps hosts
within milliseconds), less the reading's own uncertainty, health is DEGRADED.
"""

from __future__ import annotations

import asyncio
import logging
import math

import anyio

from supervisor.clock import SteadyClock
from supervisor.daemon.context import REDIS_TROUBLE, Context
from supervisor.daemon.problems import Source
from supervisor.errors import first_line

log = logging.getLogger("supervisor")

REFERENCE_EVERY_S = 1.0


class ClockReference:
    def __init__(self, context: Context, clock: SteadyClock) -> None:
        self.context = context
        self.clock = clock
        self._failing = False

    async def run(self) -> None:
        while True:
            await self.measure()
            self.show()
            await asyncio.sleep(REFERENCE_EVERY_S)

    async def measure(self) -> None:
        """One Redis TIME reading; a failure is said once (Redis' own trouble shows in
        health through the publishing)."""
        redis = self.context.assembly.clients.redis
        sent = self.clock.monotonic()
        try:
            with anyio.fail_after(self.context.assembly.redis_timeout_s):
                seconds, micros = await redis.time()
        except REDIS_TROUBLE as exc:
            if not self._failing:
                detail = "timed out" if isinstance(exc, TimeoutError) else first_line(exc)
                log.warning("clock offset: cannot read Redis TIME: %s", detail)
            self._failing = True
            return
        received = self.clock.monotonic()
        if self._failing:
            log.warning("clock offset: Redis TIME answers again")
        self._failing = False
        self.clock.observe_reference(seconds + micros / 1e6, sent, received)

    def show(self) -> None:
        """The gauges, the runtime's copy for the published state, and health."""
        metrics, runtime = self.context.metrics, self.context.runtime
        reading = self.clock.reference_offset()
        runtime.clock_offset = reading
        offset, uncertainty = reading if reading else (math.nan, math.nan)
        metrics.clock_offset.set(offset)
        metrics.clock_offset_uncertainty.set(uncertainty)
        metrics.clock_unbelieved.set(self.clock.offset_s())
        limit = self.context.assembly.settings.supervisor.max_clock_offset_s
        metrics.clock_offset_max.set(limit)
        problem = offset_problem(reading, limit)
        if problem is None:
            if runtime.problems.clear(Source.CLOCK):
                log.warning("clock offset: back within %.3fs of Redis TIME", limit)
        elif runtime.problems.note(Source.CLOCK, problem):
            log.error("clock offset: %s", problem)


def offset_problem(reading: tuple[float, float] | None, limit_s: float) -> str | None:
    """What is wrong when Redis' TIME is surely more than `limit_s` away."""
    if reading is None:
        return None
    offset, uncertainty = reading
    if abs(offset) - uncertainty <= limit_s:
        return None
    return (
        f"Redis TIME is {offset:+.3f}s from this daemon's clock (more than {limit_s:.3f}s):"
        " every age is off by about that much"
    )

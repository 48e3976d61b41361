"""tick_freshness: how old is the newest tick of each instrument?

Every instrument is read in one round trip, in bounded batches (tick_reads). The timestamp
may be a plain value, a hash `field`, a `json_field` (jmespath) of a JSON value, or the
newest entry of a `stream` (its id, or its `field`). During a session the age counts from
the later of the tick and the session open, so yesterday's last tick does not breach the
moment the market opens. A fresh instrument costs a comparison (tick_judge); a deadline
re-run reads only the instruments whose deadline came due.
"""

from __future__ import annotations

from redis.asyncio import Redis

from supervisor.declarations import Need
from supervisor.gauges import KindGauge
from supervisor.model import Verdict, Verdicts
from supervisor.watchdogs.base import Watchdog, WatchdogKind
from supervisor.watchdogs.tick_config import TickFreshnessConfig as TickFreshnessConfig
from supervisor.watchdogs.tick_judge import Reading, TickJudge
from supervisor.watchdogs.tick_reads import TickReads


class TickFreshness(Watchdog):
    config: TickFreshnessConfig

    def __init__(self, config: TickFreshnessConfig, redis: Redis) -> None:
        super().__init__(config)
        self.redis = redis
        self._subjects = list(config.instruments)
        keys = [config.key.replace("{instrument}", i) for i in self._subjects]
        self.reads = TickReads(keys, config.field, config.stream)
        self.judge = TickJudge(config)
        self._last: Reading | None = None  # the last complete reading, for deadline re-runs

    @property
    def subjects(self) -> list[str]:
        return self._subjects

    async def check(self, now: float, session_opened_at: float | None) -> Verdicts:
        """Read every instrument and judge."""
        self._last = None  # a check cut off or failing leaves nothing to merge into
        replies = await self.reads.read(self.redis)
        counted, not_ok = self.judge.judge(range(len(replies)), replies, now, session_opened_at)
        self._last = Reading(counted, not_ok, session_opened_at)
        return self.judge.verdicts(self._last, now)

    async def recheck(self, now: float, session_opened_at: float | None) -> Verdicts:
        """A deadline re-run: read only the instruments whose deadline came due and keep the
        last verdicts of the others. Their status cannot have got worse since (that moment
        would be their deadline); a tick can only make them fresher, which the next regular
        run reads. Without a complete last reading of this session, a full check."""
        last = self._last
        if last is None or last.opened_at != session_opened_at:
            return await self.check(now, session_opened_at)
        due = self.judge.due(last, now)
        if due:
            replies = await self.reads.read(self.redis, due)
            last = self._last = merge(
                last, due, self.judge.judge(due, replies, now, last.opened_at)
            )
        return self.judge.verdicts(last, now)


def merge(last: Reading, due: list[int], fresh: tuple[list[float], dict[int, Verdict]]) -> Reading:
    """`last` with the instruments at `due` judged anew: a new Reading (the old one may still
    be read, through the verdicts of the run that made it)."""
    counted, not_ok = last.counted.copy(), dict(last.not_ok)
    fresh_counted, fresh_not_ok = fresh
    for i, since in zip(due, fresh_counted, strict=True):
        counted[i] = since
        not_ok.pop(i, None)
    not_ok.update(fresh_not_ok)
    return Reading(counted, dict(sorted(not_ok.items())), last.opened_at)


KIND = WatchdogKind(
    config=TickFreshnessConfig,
    build=lambda config, clients: TickFreshness(config, clients.redis),
    needs=frozenset({Need.REDIS}),
    gauge=KindGauge(
        "supervisor_tick_age_seconds", "Age of the newest tick per instrument.", "instrument"
    ),
)

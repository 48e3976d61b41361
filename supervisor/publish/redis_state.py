"""What the supervisor publishes in Redis under its namespace (docs/operations.md, "What it
publishes").

`{ns}:state` hash, `{ns}:watchdog:{name}` hashes, `{ns}:heartbeat` with a TTL of three
housekeeping cycles, so that an execution engine can treat "no heartbeat" as reduce-only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from redis.asyncio import Redis

from supervisor.constants import (
    HEARTBEAT_KEY,
    HEARTBEAT_TTL_CYCLES,
    HOUSEKEEPING_INTERVAL_S,
    STATE_KEY,
    WATCHDOG_KEY,
)
from supervisor.model import Status, Verdicts, WatchdogRun
from supervisor.quantities import format_value

VALUES_SHOWN = 10  # subjects whose value the `value` field of {ns}:watchdog:{name} names


@dataclass(frozen=True)
class StateSnapshot:
    trading_state: str
    health: str
    breaker: str
    kill_switch: str
    reason: str
    since: float
    instance: str
    leader: str
    version: str
    updated_at: float
    clock_offset: str = ""  # Redis TIME minus the daemon's clock, seconds; "" not measured
    clock_offset_uncertainty: str = ""  # half the round trip of that reading


def state_key(namespace: str) -> str:
    return f"{namespace}:{STATE_KEY}"


def watchdog_key(namespace: str, name: str) -> str:
    return f"{namespace}:{WATCHDOG_KEY}:{name}"


def heartbeat_key(namespace: str) -> str:
    return f"{namespace}:{HEARTBEAT_KEY}"


class StatePublisher:
    def __init__(self, redis: Redis, namespace: str) -> None:
        self.redis = redis
        self.namespace = namespace

    async def publish_run(self, run: WatchdogRun) -> None:
        await self.redis.hset(
            watchdog_key(self.namespace, run.watchdog), mapping=_redis_mapping(run_fields(run))
        )

    async def forget(self, watchdogs: list[str]) -> None:
        """Delete the hashes of watchdogs that are no longer configured."""
        if watchdogs:
            await self.redis.delete(*(watchdog_key(self.namespace, n) for n in watchdogs))

    async def publish_state(self, snapshot: StateSnapshot, *, whole: bool = True) -> None:
        """The state hash and the heartbeat; only the heartbeat unless `whole` (an HA
        follower: every live instance keeps the heartbeat, only the leader the state)."""
        ttl_ms = int(HEARTBEAT_TTL_CYCLES * HOUSEKEEPING_INTERVAL_S * 1000)
        async with self.redis.pipeline(transaction=False) as pipe:
            if whole:
                fields = _redis_mapping(_strings(asdict(snapshot)))
                pipe.hset(state_key(self.namespace), mapping=fields)
            pipe.set(heartbeat_key(self.namespace), f"{snapshot.updated_at:.3f}", px=ttl_ms)
            await pipe.execute()


def run_fields(run: WatchdogRun) -> dict[str, str]:
    return {
        "status": run.status.name,
        "value": shown_values(run.verdicts),
        "reason": run.reason,
        "last_run": f"{run.started_at:.3f}",
        "next_run": f"{run.next_run:.3f}" if run.next_run is not None else "",
        "streak": str(run.streak),
        "duration_ms": f"{run.duration_s * 1000:.1f}",
    }


def shown_values(verdicts: Verdicts) -> str:
    """`subject=value; ...` of at most VALUES_SHOWN subjects, then how many more: with more
    subjects than that, the worst first (100,000 instruments are not written every second)."""
    if len(verdicts) <= VALUES_SHOWN:
        chosen = list(verdicts)
    else:
        chosen = []
        for status in (Status.CRITICAL, Status.BREACH, Status.UNKNOWN, Status.WARN, Status.OK):
            chosen += verdicts.with_status(status, VALUES_SHOWN - len(chosen))
    shown = [f"{v.subject}={format_value(v.value, v.unit)}" for v in chosen if v.value is not None]
    more = len(verdicts) - len(chosen)
    return "; ".join(shown) + (f" (+{more} more)" if more > 0 else "")


def _strings(fields: dict[str, object]) -> dict[str, str]:
    return {k: f"{v:.3f}" if isinstance(v, float) else str(v) for k, v in fields.items()}


def _redis_mapping(fields: dict[str, str]) -> Any:
    """redis-py types `mapping` with an invariant key union that no plain dict matches."""
    return fields

"""redis_flag: set one Redis key to a value (a kill-switch flag that the trading stack reads).

`SET key value GET` is one atomic command: `changed` says whether the previous value differed,
so two supervisors setting it at once report one change. A manual release deletes the key
(absent means "not engaged" to every reader we protect).
"""

from __future__ import annotations

from typing import Literal

from redis.asyncio import Redis

from supervisor.actuators.base import ActionContext, Actuator, ActuatorKind, Outcome
from supervisor.config.actuator_base import ActuatorBase
from supervisor.config.types import Text
from supervisor.declarations import Need
from supervisor.model import Decision, TradingState


class RedisFlagConfig(ActuatorBase):
    kind: Literal["redis_flag"]
    key: Text
    value: Text = "1"  # blank could read as "not set" to the stack


class RedisFlag(Actuator):
    config: RedisFlagConfig
    reads_own_redis = True

    def __init__(self, name: str, config: RedisFlagConfig, redis: Redis) -> None:
        super().__init__(name, TradingState.from_level(config.level))
        self.config = config
        self.redis = redis

    async def engage(self, decision: Decision, context: ActionContext) -> Outcome:
        previous = await self.redis.set(self.config.key, self.config.value, get=True)
        changed = as_text(previous) != self.config.value
        detail = f"{self.config.key} = {self.config.value}" if changed else ""
        return Outcome(changed, detail)

    async def is_engaged(self) -> bool:
        return as_text(await self.redis.get(self.config.key)) == self.config.value

    async def disengage(self, context: ActionContext) -> Outcome:
        """Manual reset only: delete the flag."""
        removed = await self.redis.delete(self.config.key)
        return Outcome(bool(removed), f"{self.config.key} deleted")


def as_text(raw: object) -> str | None:
    """A reply as text; None for a missing key (redis-py types SET ... GET loosely)."""
    if isinstance(raw, bytes):
        return raw.decode("utf-8", "replace")
    return raw if isinstance(raw, str) else None


KIND = ActuatorKind(
    config=RedisFlagConfig,
    build=lambda name, config, clients: RedisFlag(name, config, clients.redis),
    needs=frozenset({Need.REDIS}),
)

"""redis_breaker: trip the trading stack's circuit breaker (reduce-only) in Redis.

The trip is one Lua script, so check-and-set, the history entry and the PUBLISH happen
atomically: two supervisors tripping at once write it once, and a trip while tripped changes
nothing (the caller still audits it). The breaker owner's `updated_at` is kept when present,
so our write never makes a dead breaker owner look alive to a staleness check.
"""

from __future__ import annotations

import json
from typing import Literal

from pydantic import Field, model_validator
from redis.asyncio import Redis

from supervisor import stored
from supervisor.actuators.base import ActionContext, Actuator, ActuatorKind, Outcome
from supervisor.config.actuator_base import ActuatorBase
from supervisor.config.types import Level, PositiveDuration, Text
from supervisor.declarations import Need
from supervisor.model import Decision, TradingState

# KEYS: state key, history key. ARGV: tripped value, new value, history entry, history max,
# channel, now, format ("json" or "plain").
TRIP_SCRIPT = """
local current = redis.call('GET', KEYS[1])
local value = ARGV[2]
if current then
  local ok, doc = pcall(cjson.decode, current)
  local state = current
  if ok and type(doc) == 'table' then state = doc['state'] end
  if state == ARGV[1] then return 0 end
  if ARGV[7] == 'json' and ok and type(doc) == 'table' and doc['updated_at'] ~= nil then
    local new = cjson.decode(value)
    new['updated_at'] = doc['updated_at']
    value = cjson.encode(new)
  end
end
redis.call('SET', KEYS[1], value)
redis.call('ZADD', KEYS[2], ARGV[6], ARGV[3])
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -(tonumber(ARGV[4]) + 1))
redis.call('PUBLISH', ARGV[5], value)
return 1
"""


class RedisBreakerConfig(ActuatorBase):
    kind: Literal["redis_breaker"]
    level: Level = "reduce_only"
    key: Text = "circuit_breaker:state"
    history_key: Text = "circuit_breaker:history"
    channel: Text | None = None  # PUBLISH channel; default: the key
    tripped_value: Text = "TRIPPED"
    clear_value: Text = "OPEN"
    format: Literal["json", "plain"] = "json"  # plain: the key holds just the state word
    history_max: int = Field(10_000, ge=1, le=1_000_000)  # a ZSET entry per trip, capped
    # Only a reduce-only breaker may release itself, and only after its watchdog cleared.
    auto_reset_after_s: PositiveDuration | None = Field(None, alias="auto_reset_after")

    @model_validator(mode="after")
    def _auto_reset_only_reduce_only(self) -> RedisBreakerConfig:
        if self.auto_reset_after_s is not None and self.level != "reduce_only":
            raise ValueError("'auto_reset_after' is allowed only for a reduce_only breaker")
        return self


class RedisBreaker(Actuator):
    config: RedisBreakerConfig
    reads_own_redis = True

    def __init__(self, name: str, config: RedisBreakerConfig, redis: Redis) -> None:
        super().__init__(name, TradingState.from_level(config.level))
        self.config = config
        self.redis = redis
        self._trip = redis.register_script(TRIP_SCRIPT)

    @property
    def auto_reset_after_s(self) -> float | None:
        return self.config.auto_reset_after_s

    async def engage(self, decision: Decision, context: ActionContext) -> Outcome:
        cfg = self.config
        value = self.tripped_value(decision, context)
        entry = json.dumps(
            {
                "event": "trip",
                "incident_id": decision.incident_id,
                "watchdog": decision.source,
                "reason": decision.reason,
                "by": context.instance_id,
                "at": context.now,
                **fencing(decision),
            },
            sort_keys=True,
        )
        changed = await self._trip(
            keys=[cfg.key, cfg.history_key],
            args=[
                cfg.tripped_value,
                value,
                entry,
                cfg.history_max,
                self.channel,
                context.now,
                cfg.format,
            ],
        )
        return Outcome(bool(changed), f"{cfg.key} = {cfg.tripped_value}" if changed else "")

    def tripped_value(self, decision: Decision, context: ActionContext) -> str:
        if self.config.format == "plain":
            return self.config.tripped_value
        return json.dumps(
            {
                "state": self.config.tripped_value,
                "reason": decision.reason,
                "watchdog": decision.source,
                "by": context.instance_id,
                "tripped_at": context.now,
                "updated_at": context.now,
                **fencing(decision),
            }
        )

    async def disengage(self, context: ActionContext) -> Outcome:
        """Manual reset: write the clear value, record it in the history, PUBLISH it."""
        cfg = self.config
        value = cfg.clear_value
        if cfg.format == "json":
            value = json.dumps(
                {"state": cfg.clear_value, "by": context.instance_id, "updated_at": context.now}
            )
        entry = json.dumps({"event": "reset", "by": context.instance_id, "at": context.now})
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(cfg.key, value)
            pipe.zadd(cfg.history_key, {entry: context.now})
            pipe.zremrangebyrank(cfg.history_key, 0, -(cfg.history_max + 1))
            pipe.publish(self.channel, value)
            await pipe.execute()
        return Outcome(True, f"{cfg.key} = {cfg.clear_value}")

    @property
    def channel(self) -> str:
        return self.config.channel or self.config.key

    async def is_engaged(self) -> bool:
        raw = await self.redis.get(self.config.key)
        return raw is not None and breaker_state(raw) == self.config.tripped_value


def breaker_state(raw: bytes | str) -> str:
    """The state word of a breaker value, JSON ({"state": ...}) or plain."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    try:
        document = stored.decode_json(text)  # any depth, any size: never a RecursionError
    except stored.Unreadable:
        return text.strip()
    if isinstance(document, dict):
        return str(document.get("state", ""))
    return text.strip()


KIND = ActuatorKind(
    config=RedisBreakerConfig,
    build=lambda name, config, clients: RedisBreaker(name, config, clients.redis),
    needs=frozenset({Need.REDIS}),
)


def fencing(decision: Decision) -> dict[str, int]:
    """The leader term's token in what a trip writes, with [ha] on."""
    return {} if decision.fencing_token is None else {"fencing_token": decision.fencing_token}

"""The leader's orders not known done, shared in Redis (`{ns}:orders`, a hash: actuator ->
the order as JSON, with its incident id and fencing token) so that a new leader carries out
what the old one ordered under the same Idempotency-Key, rather than ordering it again as a
new incident. Written as the action is sent (never holding it up), deleted once the
actuator's latch is in Redis. Only with [ha] on; state_dir keeps each instance's own
(supervisor/pending.py).
"""

from __future__ import annotations

import json
import logging

from redis.asyncio import Redis

from supervisor.pending import Order
from supervisor.text import safe_line

log = logging.getLogger("supervisor")


def orders_key(namespace: str) -> str:
    return f"{namespace}:orders"


class SharedOrders:
    def __init__(self, redis: Redis, namespace: str) -> None:
        self.redis = redis
        self.key = orders_key(namespace)

    async def put(self, order: Order) -> None:
        await self.redis.hset(self.key, order.actuator, json.dumps(order.to_dict()))

    async def done(self, actuator: str) -> None:
        await self.redis.hdel(self.key, actuator)

    async def load(self) -> list[Order]:
        """The orders in Redis; one that is not a whole order (written by hand, another
        version) is logged and left out."""
        orders = []
        for name, raw in (await self.redis.hgetall(self.key)).items():
            try:
                orders.append(Order.from_dict(json.loads(raw)))
            except (ValueError, KeyError, TypeError) as exc:
                shown = safe_line(str(name), 80)
                log.error("%s: the order for %s is not usable (%s): ignored", self.key, shown, exc)
        return orders

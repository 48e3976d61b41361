"""The leader's orders not known done, shared in Redis so that a new leader carries out what
the old one ordered under the same Idempotency-Key, rather than ordering it again as a new
incident: `{ns}:order:{actuator}`, the order as JSON (with its incident id and fencing
token). Written before the action goes out (never holding it up long), deleted once the
actuator's latch is in Redis. Only with [ha] on; state_dir keeps each instance's own
(supervisor/pending.py).

Each expires ORDER_TTL_LEASES lease_ttls after it was last written (every retry writes it
again). A takeover comes within one lease_ttl of the leader's death, so that is ample; and an
order the leader could no longer carry out long ago (its incident cleared, its actuator
failing) never fires on a takeover days later.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from redis.asyncio import Redis

from supervisor import stored
from supervisor.keys import order_key
from supervisor.pending import Order
from supervisor.stored_redis import set_aside_string

ORDER_TTL_LEASES = 3


class SharedOrders:
    def __init__(self, redis: Redis, namespace: str, lease_ttl_s: float) -> None:
        self.redis = redis
        self.namespace = namespace
        self.ttl_ms = int(ORDER_TTL_LEASES * lease_ttl_s * 1000)

    async def put(self, order: Order) -> None:
        key = order_key(self.namespace, order.actuator)
        await self.redis.set(key, json.dumps(order.to_dict()), px=self.ttl_ms)

    async def done(self, actuator: str) -> None:
        await self.redis.delete(order_key(self.namespace, actuator))

    async def load(self, actuators: Iterable[str]) -> list[Order]:
        """The orders in Redis for `actuators`; one that is not a whole order (written by
        hand, another version) is said once, counted, set aside and left out. A key that is
        not a string reads as none (MGET)."""
        names = list(actuators)
        if not names:
            return []
        raws = await self.redis.mget([order_key(self.namespace, name) for name in names])
        orders = []
        for name, raw in zip(names, raws, strict=True):
            if raw is None:
                continue
            try:
                orders.append(Order.from_dict(stored.decode_json(raw)))
            except stored.Unreadable as exc:
                key = order_key(self.namespace, name)
                await set_aside_string(self.redis, self.namespace, key, raw, str(exc), "ignored")
        return orders

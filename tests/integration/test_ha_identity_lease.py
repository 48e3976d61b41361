"""One instance id, one process, at the lease (issue 16, defect 4): two LeaseStores with the
same instance id but their own boot nonce, as two processes would hold them, on the real
test Redis. The second is refused the id while the first renews it; it never renews nor
re-takes the first one's lease; once the first stops renewing, the second takes the id
and then the lease with a new token, and the first is refused from then on."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from redis.asyncio import Redis

from supervisor.ha.lease import Granted, HeldElsewhere, IdentityTaken, LeaseStore
from supervisor.keys import fencing_key, identity_key, leader_key

pytestmark = pytest.mark.anyio

TTL_S = 0.6


def stores(redis: Redis) -> tuple[str, LeaseStore, LeaseStore]:
    namespace = f"id{uuid.uuid4().hex[:8]}"
    first = LeaseStore(redis, namespace, "a", TTL_S, boot="boot-first")
    second = LeaseStore(redis, namespace, "a", TTL_S, boot="boot-second")
    return namespace, first, second


async def test_a_second_process_with_the_same_id_is_refused_and_never_takes_the_lease(
    redis: Redis,
) -> None:
    namespace, first, second = stores(redis)
    granted = await first.claim(None, 0)
    assert isinstance(granted, Granted)
    for _ in range(4):  # on main, each of these took the lease with a new token
        refused = await second.claim(None, 0)
        assert isinstance(refused, IdentityTaken) and refused.owner == "boot-first"
        assert await first.claim(granted.token, granted.token) == granted  # renewed, same term
    assert await redis.get(fencing_key(namespace)) == str(granted.token).encode()
    assert await redis.get(identity_key(namespace, "a")) == b"boot-first"


async def test_when_the_first_stops_renewing_the_second_takes_the_id_and_the_first_is_refused(
    redis: Redis,
) -> None:
    _namespace, first, second = stores(redis)
    first_term = await first.claim(None, 0)
    assert isinstance(first_term, Granted)
    await asyncio.sleep(TTL_S + 0.1)  # the first is paused: its id and its lease expire
    second_term = await second.claim(None, first_term.token)
    assert isinstance(second_term, Granted) and second_term.token > first_term.token
    # The first runs again: it may neither renew its old term nor take a new one.
    for token in (first_term.token, None):
        refused = await first.claim(token, second_term.token)
        assert isinstance(refused, IdentityTaken) and refused.owner == "boot-second"
        assert refused.remaining_s is not None and 0 < refused.remaining_s <= TTL_S
    assert await second.claim(second_term.token, second_term.token) == second_term


async def test_the_lease_of_a_dead_process_with_the_same_id_is_not_renewed_by_its_successor(
    redis: Redis,
) -> None:
    """The id expired before the lease did (a lease held by hand, or a shorter TTL): the
    successor takes the id, but waits for the old lease to expire like any follower."""
    namespace, first, second = stores(redis)
    first_term = await first.claim(None, 0)
    assert isinstance(first_term, Granted)
    await redis.delete(identity_key(namespace, "a"))
    waiting = await second.claim(None, first_term.token)
    assert isinstance(waiting, HeldElsewhere) and waiting.holder == "a"
    assert waiting.token == first_term.token
    await redis.delete(leader_key(namespace))  # the old lease expires
    assert isinstance(await second.claim(None, first_term.token), Granted)


async def test_a_hold_that_never_expires_is_told_apart(redis: Redis) -> None:
    namespace, _first, second = stores(redis)
    await redis.set(identity_key(namespace, "a"), "set-by-hand")
    assert await second.claim(None, 0) == IdentityTaken("set-by-hand", None)


async def test_a_clean_stop_gives_the_id_up_at_once(redis: Redis) -> None:
    namespace, first, second = stores(redis)
    term = await first.claim(None, 0)
    assert isinstance(term, Granted)
    assert await first.release(term.token)
    assert await redis.get(identity_key(namespace, "a")) is None
    successor = await second.claim(None, term.token)
    assert isinstance(successor, Granted)
    assert not await first.release(term.token)  # neither the lease nor the id are its own now
    assert await redis.get(identity_key(namespace, "a")) == b"boot-second"
    assert await second.claim(successor.token, successor.token) == successor

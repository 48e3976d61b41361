"""Two real daemon processes on one real Redis, with the leader lease on: exactly one leads;
SIGKILL of the leader during a stale feed makes the follower trip within lease_ttl + one
interval, with one trip in the breaker history for the incident; a SIGSTOPped leader that
runs again after its lease lapsed does not act.

Each daemon has its own config, state_dir and log; both watch the same feed, share the
namespace and act on the same breaker and the same HTTP kill switch (which records who
asked, with which fencing token).
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest
from redis import Redis

from testbed.ha_daemons import HaDaemons
from testbed.killswitch_server import KillSwitchServer
from testbed.redis_server import RedisServer
from testbed.tick_feed import TickFeed
from testbed.waiting import wait_until

pytestmark = pytest.mark.slow

LEASE_TTL_S = 2.0
INTERVAL_S = 0.5
SLACK_S = 0.75  # process scheduling on a shared 2-core machine


class Pair(HaDaemons):
    """Two daemons ("a", "b") and the feed they both watch."""

    def __init__(self, tmp_path: Path, redis_url: str, venue: KillSwitchServer) -> None:
        super().__init__(tmp_path, redis_url, venue)
        self.feed = TickFeed(redis_url)


@pytest.fixture
def venue() -> Iterator[KillSwitchServer]:
    with KillSwitchServer() as server:
        yield server


@pytest.fixture
def pair(
    tmp_path: Path, redis_server: RedisServer, sync_redis: Redis, venue: KillSwitchServer
) -> Iterator[Pair]:
    """ "a" starts first and leads; "b" follows. The feed is fresh."""
    pair = Pair(tmp_path, redis_server.url, venue)
    pair.feed.start()
    try:
        pair.start("a")
        wait_until(lambda: leader(sync_redis) == "a", 15, "a to lead")
        pair.start("b")
        wait_until(lambda: role(sync_redis, "b") == "follower", 15, "b to follow a")
        yield pair
    finally:
        pair.feed.stop()
        pair.stop()


def text(raw: object) -> str | None:
    return raw.decode() if isinstance(raw, bytes) else None


def leader(client: Redis) -> str | None:
    return text(client.get("sup:leader"))


def role(client: Redis, instance: str) -> str | None:
    return text(client.hget(f"sup:instance:{instance}", "role"))


def trips(client: Redis) -> list[dict[str, object]]:
    entries = client.zrange("circuit_breaker:history", 0, -1)
    return [json.loads(cast(bytes, entry)) for entry in entries]


def kills(venue: KillSwitchServer) -> list[dict[str, str]]:
    return [request.json() for request in venue.activation_requests()]


def test_exactly_one_leader(pair: Pair, sync_redis: Redis) -> None:
    time.sleep(LEASE_TTL_S)  # several renewals and follower polls
    assert leader(sync_redis) == "a"
    assert (role(sync_redis, "a"), role(sync_redis, "b")) == ("leader", "follower")
    assert sync_redis.hget("sup:state", "instance") == b"a"
    token = sync_redis.hget("sup:instance:a", "fencing_token")
    assert token is not None and int(token) >= 1


def test_sigkill_of_the_leader_during_a_stale_feed_the_follower_trips_once(
    pair: Pair, sync_redis: Redis, venue: KillSwitchServer
) -> None:
    token_a = int(sync_redis.hget("sup:instance:a", "fencing_token") or 0)
    pair.feed.stop()
    pair.daemons["a"].process.kill()  # before the breach: "a" never acts
    killed_at = time.monotonic()
    wait_until(lambda: len(trips(sync_redis)) > 0, 10, "the follower to trip")
    took_s = time.monotonic() - killed_at
    print(f"follower tripped {took_s:.2f}s after the leader's SIGKILL (lease_ttl 2s)")
    assert took_s <= LEASE_TTL_S + INTERVAL_S + SLACK_S, f"took {took_s:.2f}s"

    time.sleep(2 * INTERVAL_S)  # more cycles of the same incident
    [trip] = trips(sync_redis)
    assert trip["by"] == "b" and int(str(trip["fencing_token"])) > token_a
    assert [k["by"] for k in kills(venue)] == ["b"]
    assert leader(sync_redis) == "b"


def test_sigkill_after_the_leader_acted_the_new_leader_does_not_act_again(
    pair: Pair, sync_redis: Redis, venue: KillSwitchServer
) -> None:
    pair.feed.stop()
    wait_until(lambda: len(trips(sync_redis)) == 1 and len(kills(venue)) == 1, 10, "a to act")
    pair.daemons["a"].process.kill()
    wait_until(lambda: leader(sync_redis) == "b", LEASE_TTL_S + 2, "b to take over")
    wait_until(lambda: sync_redis.hget("sup:state", "instance") == b"b", 5, "b to publish")

    time.sleep(3 * INTERVAL_S)  # the incident goes on under the new leader
    [trip] = trips(sync_redis)
    assert trip["by"] == "a"  # one trip for the incident
    # If "a" died before its latch reached Redis, "b" carried out a's order as it was: the
    # venue saw one Idempotency-Key, and activated once.
    assert len(set(venue.received_keys)) == 1 and venue.activations == 1
    assert kills(venue)[0]["by"] == "a"
    assert sync_redis.hget("sup:state", "trading_state") == b"FLATTEN"  # what "a" engaged
    assert "taking over: engaging" not in pair.daemons["b"].log()  # nothing as a new incident


def test_a_sigstopped_leader_does_not_act_after_its_lease_lapsed(
    pair: Pair, sync_redis: Redis, venue: KillSwitchServer
) -> None:
    a = pair.daemons["a"]
    a.process.send_signal(signal.SIGSTOP)
    pair.feed.stop()
    wait_until(lambda: leader(sync_redis) == "b", LEASE_TTL_S + 2, "b to take over")
    wait_until(lambda: len(kills(venue)) == 1, 10, "b to act")

    a.process.send_signal(signal.SIGCONT)  # its cycles run on with the stale feed
    wait_until(lambda: role(sync_redis, "a") == "follower", 5, "a to learn it follows")
    time.sleep(3 * INTERVAL_S)
    assert [k["by"] for k in kills(venue)] == ["b"]
    [trip] = trips(sync_redis)
    assert trip["by"] == "b"
    assert "no longer leads" in a.log() or "follower: b leads" in a.log()

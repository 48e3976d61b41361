"""One identity per instance, as real daemon processes (issue 16, defect 4). On main, two
processes with one instance_id and [ha] on both led: they took the lease from each other on
every renewal and the venue got two Idempotency-Keys for one incident.

Here: a second process whose instance_id a live one holds exits 78 at start, and the
first's lease is untouched; a second one that starts while the first is SIGSTOPped (it
looks dead) takes the id and leads, and the first, running again, leads no more and says
so: one key at the venue for the incident. Two daemons on one state_dir: the second exits
78 naming the first's PID; after a SIGKILL of the first, a restart runs.
"""

from __future__ import annotations

import shutil
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis

from testbed.daemon_process import Daemon, write_config
from testbed.ha_daemons import HaDaemons
from testbed.killswitch_server import KillSwitchServer
from testbed.redis_server import RedisServer
from testbed.tick_feed import TickFeed
from testbed.waiting import wait_until

pytestmark = pytest.mark.slow

LEASE_TTL_S = 2.0
INTERVAL_S = 0.5
EX_CONFIG = 78


class Group(HaDaemons):
    """Daemons with [ha] on in one namespace of their own, each with its own state_dir."""

    def __init__(self, tmp_path: Path, redis_url: str, venue: KillSwitchServer) -> None:
        super().__init__(tmp_path, redis_url, venue, namespace=f"ident{uuid.uuid4().hex[:8]}")

    def token(self, client: Redis) -> int:
        raw = client.get(f"{self.namespace}:leader:token")
        return int(raw) if isinstance(raw, bytes) else 0


@pytest.fixture
def venue() -> Iterator[KillSwitchServer]:
    with KillSwitchServer() as server:
        yield server


@pytest.fixture
def group(tmp_path: Path, redis_server: RedisServer, venue: KillSwitchServer) -> Iterator[Group]:
    made = Group(tmp_path, redis_server.url, venue)
    try:
        yield made
    finally:
        made.stop()


def test_a_second_process_with_a_live_instance_id_is_refused_with_78(
    group: Group, sync_redis: Redis
) -> None:
    first = group.start("first", "a")
    wait_until(lambda: group.token(sync_redis) > 0, 15, "the first to lead")
    token = group.token(sync_redis)

    second = group.start("second", "a")
    code = second.process.wait(timeout=LEASE_TTL_S + 15)
    log = second.log()
    assert code == EX_CONFIG, log
    assert "instance_id 'a' is in use: another live trading-supervisor holds it" in log
    assert "Traceback" not in log
    # the first went on leading, in the same term: nothing was taken from it
    assert first.process.poll() is None
    assert group.token(sync_redis) == token
    assert group.gauge(first, "supervisor_is_leader") == 1
    assert group.gauge(first, "supervisor_instance_id_conflict") == 0


def test_a_paused_first_process_leads_no_more_once_a_second_took_its_id(
    group: Group, sync_redis: Redis, venue: KillSwitchServer
) -> None:
    feed = TickFeed(group.redis_url)
    feed.start()
    try:
        first = group.start("first", "a")
        wait_until(lambda: group.token(sync_redis) > 0, 15, "the first to lead")
        first_token = group.token(sync_redis)
        first.process.send_signal(signal.SIGSTOP)  # long enough to look dead

        second = group.start("second", "a")
        wait_until(
            lambda: group.token(sync_redis) > first_token,
            3 * LEASE_TTL_S + 10,
            "the second to take the id, then the lease",
        )
        second_token = group.token(sync_redis)
        assert second.process.poll() is None, second.log()
        feed.stop()  # the incident, under the second's lead
        wait_until(lambda: venue.activations == 1, 10, "the second to act")

        first.process.send_signal(signal.SIGCONT)  # its cycles run on with the stale feed
        time.sleep(2 * LEASE_TTL_S + 3 * INTERVAL_S)  # renewals, polls and cycles of both
    finally:
        feed.stop()

    assert len(set(venue.received_keys)) == 1 and venue.activations == 1
    assert [r.json()["token"] for r in venue.activation_requests()] == [str(second_token)] * len(
        venue.activation_requests()
    )
    assert group.token(sync_redis) == second_token  # nobody took the lease back and forth
    assert (
        group.gauge(first, "supervisor_is_leader"),
        group.gauge(second, "supervisor_is_leader"),
    ) == (0, 1)
    assert "another process" in first.log() and "runs with instance_id a" in first.log()
    assert group.gauge(first, "supervisor_instance_id_conflict") == 1
    assert group.gauge(second, "supervisor_instance_id_conflict") == 0
    assert first.process.poll() is None  # it runs on, and says so, until the ids differ
    assert "this one acts on nothing until the ids differ" in first.log()
    role = sync_redis.hget(f"{group.namespace}:instance:a", "role")
    assert role == b"leader"  # the duplicate does not overwrite the record of the id's holder


def test_a_second_daemon_on_the_same_state_dir_is_refused_with_78(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    config, _ = write_config(tmp_path, redis_server.url, namespace=f"sd{uuid.uuid4().hex[:8]}")
    first = Daemon(config, None)
    try:
        wait_until(lambda: "started version=" in first.log(), 15, "the first to start")
        again = tmp_path / "again.toml"  # the same config, a log of its own
        shutil.copy(config, again)
        second = Daemon(again, None)
        assert second.process.wait(timeout=15) == EX_CONFIG
        second.terminate()  # closes its log
        log = second.log()
        assert f"in use by another trading-supervisor (PID {first.process.pid})" in log, log
        assert "Traceback" not in log
        assert first.process.poll() is None

        first.kill()  # the lock dies with the process: a restart finds it free
        restart = tmp_path / "restart.toml"
        shutil.copy(config, restart)
        third = Daemon(restart, None)
        wait_until(lambda: "started version=" in third.log(), 15, "the restart to run")
        assert third.terminate() == 0
    finally:
        first.kill()

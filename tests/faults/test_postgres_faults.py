"""The audit database away during a trip: the trail loses nothing and duplicates nothing."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections import Counter
from pathlib import Path

import asyncpg
import pytest
from redis import Redis

from supervisor.constants import AUDIT_OUTBOX_FILE, AUDIT_TABLE
from testbed.config_blocks import ticks_watchdog
from testbed.daemon_process import Daemon
from testbed.notify_socket import NotifySocket
from testbed.postgres_server import PostgresServer
from testbed.redis_server import RedisServer
from testbed.tick_feed import TickFeed
from testbed.waiting import wait_until
from tests.faults.stack import BREAKER, assert_no_crash, key, sample, scrape, write_config

pytestmark = pytest.mark.slow

TICKS = ticks_watchdog(warn="300ms", breach="500ms", interval="250ms")


def audit_ids(dsn: str) -> Counter[str]:
    """How many rows each event id has in the audit table (none if it does not exist yet)."""

    async def fetch() -> Counter[str]:
        connection = await asyncpg.connect(dsn, timeout=5)
        try:
            if await connection.fetchval("SELECT to_regclass($1)", AUDIT_TABLE) is None:
                return Counter()
            rows = await connection.fetch(f"SELECT id FROM {AUDIT_TABLE}")
            return Counter(str(row["id"]) for row in rows)
        finally:
            await connection.close()

    return asyncio.run(fetch())


def outbox_ids(state_dir: Path) -> list[str]:
    path = state_dir / AUDIT_OUTBOX_FILE
    if not path.exists():
        return []
    return [json.loads(line)["id"] for line in path.read_bytes().splitlines() if line.strip()]


def test_postgres_away_during_a_trip_outbox_replayed_exactly_once(
    tmp_path: Path,
    redis_server: RedisServer,
    sync_redis: Redis,
    private_postgres: PostgresServer,
    notify_socket: NotifySocket,
) -> None:
    dsn = private_postgres.dsn
    setup = write_config(tmp_path, redis_server.url, BREAKER + TICKS, postgres_dsn=dsn)
    feed = TickFeed(redis_server.url).start()
    daemon = Daemon(setup.config, notify_socket)
    try:
        notify_socket.wait_for("STATUS=ACTIVE: 1 of 1 watchdogs OK")
        daemon.process.send_signal(signal.SIGHUP)  # a reload is audited: a row before the outage
        wait_until(lambda: len(audit_ids(dsn)) == 1, 10, "the reload's row")
        private_postgres.stop()
        feed.stop()  # the feed dies while the audit database is away: a trip
        notify_socket.wait_for("STATUS=REDUCE_ONLY", timeout_s=10)
        daemon.process.send_signal(signal.SIGHUP)  # and one more event, after the trip
        wait_until(lambda: len(outbox_ids(setup.state_dir)) >= 3, 10, "the events in the outbox")
        time.sleep(1.0)  # housekeeping passes while Postgres is away: nothing is lost
        waiting = outbox_ids(setup.state_dir)
        outbox_gauge = sample(scrape(setup.metrics_port), "supervisor_audit_outbox_events")
        assert outbox_gauge == len(waiting)
        assert "audit: postgres unavailable" in daemon.log()

        private_postgres.start()
        back_at = time.time()
        wait_until(lambda: not outbox_ids(setup.state_dir), 20, "the outbox replayed")
        replayed_in = time.time() - back_at
        time.sleep(2.0)  # more passes: a replayed event is never inserted again
        rows = audit_ids(dsn)
        print(
            f"postgres away during a trip: {len(waiting)} events in the outbox, replayed"
            f" {replayed_in:.2f}s after it returned; {sum(rows.values())} rows,"
            f" {len(rows)} distinct ids"
        )
        assert len(rows) == len(waiting) + 1  # the reload's row, and every event of the outbox
        assert set(waiting) <= set(rows)
        assert all(rows[event_id] == 1 for event_id in waiting)
        assert max(rows.values()) == 1  # nothing is in the table twice
        assert sample(scrape(setup.metrics_port), "supervisor_audit_outbox_events") == 0
        entries: list[tuple[bytes, dict[bytes, bytes]]] = sync_redis.xrange(key("events"))  # type: ignore[assignment]
        streamed = {fields[b"id"].decode() for _, fields in entries}
        assert set(waiting) <= streamed  # {ns}:events had them all along
        assert_no_crash(daemon)
    finally:
        feed.stop()
        assert daemon.terminate() == 0

"""TLS to Redis (`rediss://`) and to PostgreSQL, with throwaway certificates (trustme).

The supervisor's config already says everything TLS needs, with no field of our own:
- Redis: `rediss://host:port/0?ssl_ca_certs=/path/ca.pem` (redis-py reads the CA file from
  the URL's query, as it does `ssl_certfile` / `ssl_keyfile` for a client certificate);
- PostgreSQL: `?sslmode=verify-full&sslrootcert=/path/ca.pem` in the DSN (asyncpg reads
  libpq's parameters).
Both servers here accept TLS only: Redis has no plain port (`--port 0`), PostgreSQL only
`hostssl` lines. A server whose certificate the configured CA did not sign is refused, and
that shows as UNKNOWN verdicts, a DEGRADED supervisor and an audit outbox, never a crash.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from pydantic import SecretStr
from redis import Redis as SyncRedis
from redis.asyncio import Redis

from supervisor.actuators.base import ActionContext
from supervisor.actuators.redis_breaker import RedisBreaker, RedisBreakerConfig
from supervisor.config.sections import RedisSection
from supervisor.constants import AUDIT_OUTBOX_FILE
from supervisor.model import Decision, Status, Verdict
from supervisor.publish.audit import AuditEvent, AuditKind, AuditOutcome, AuditTrail
from supervisor.sources.postgres import Postgres
from supervisor.sources.redis import connect
from supervisor.watchdogs.base import evaluate
from supervisor.watchdogs.sql_value import SqlValue, SqlValueConfig
from supervisor.watchdogs.tick_freshness import TickFreshness, TickFreshnessConfig
from testbed.certificates import Certificates, make_certificates
from testbed.daemon_process import Daemon, cli, write_config
from testbed.notify_socket import NotifySocket
from testbed.postgres_server import PostgresServer, running_postgres
from testbed.redis_server import RedisServer, running_redis
from testbed.tick_feed import TickFeed
from testbed.waiting import wait_until

CERTIFICATE_REFUSED = "certificate verify failed"
PG_PASSWORD = "tls-test-pg-pw"


# --- servers and clients --------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("certs"), "server")


@pytest.fixture(scope="module")
def wrong_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The CA of another PKI: it signed nothing the servers present."""
    return make_certificates(tmp_path_factory.mktemp("other"), "other").ca_file


@pytest.fixture(scope="module")
def tls_redis(
    tmp_path_factory: pytest.TempPathFactory, certificates: Certificates
) -> Iterator[RedisServer]:
    with running_redis(tmp_path_factory.mktemp("tlsredis"), tls=certificates) as server:
        yield server


@pytest.fixture(scope="module")
def tls_postgres(certificates: Certificates) -> Iterator[PostgresServer]:
    with running_postgres(password=PG_PASSWORD, tls=certificates) as server:
        yield server


@pytest.fixture
def admin(tls_redis: RedisServer) -> Iterator[SyncRedis]:
    client = SyncRedis.from_url(tls_redis.url)
    client.flushall()
    yield client
    client.close()


def with_ca(url: str, good: Path, ca: Path) -> str:
    return url.replace(str(good), str(ca))


@pytest.fixture
async def supervisor_redis(tls_redis: RedisServer) -> AsyncIterator[Redis]:
    """The supervisor's own client, from a config's [redis] url exactly as written."""
    client = connect(RedisSection(url=tls_redis.url), "tls-test")
    yield client
    await client.aclose()


def tick_watchdog(redis: Redis) -> TickFreshness:
    config = TickFreshnessConfig.model_validate(
        {"name": "ticks", "kind": "tick_freshness", "key": "ticks:last:SPX"}
        | {"instruments": ["SPX"], "breach": "15s"}
    )
    return TickFreshness(config, redis)


def sql_watchdog(dsn: str) -> tuple[SqlValue, Postgres]:
    source = Postgres(SecretStr(dsn), 2.0, "tls-test")
    config = SqlValueConfig.model_validate(
        {"name": "lag", "kind": "sql_value", "query": "SELECT 1", "breach": 10}
    )
    return SqlValue(config, source), source


async def judge(watchdog: TickFreshness | SqlValue) -> Verdict:
    [verdict] = await evaluate(watchdog, None, time.time())
    return verdict


def audit_event() -> AuditEvent:
    return AuditEvent.new(
        AuditKind.ACTION, watchdog="ticks", actuator="breaker", outcome=AuditOutcome.OK
    )


async def fetch_ids(dsn: str, where: str = "true") -> list[str]:
    connection = await asyncpg.connect(dsn, timeout=5)
    try:
        rows = await connection.fetch(f"SELECT id FROM supervisor_events WHERE {where}")
        return [str(row["id"]) for row in rows]
    finally:
        await connection.close()


# --- Redis ----------------------------------------------------------------------------------

pytestmark = pytest.mark.anyio


async def test_redis_speaks_tls_only(tls_redis: RedisServer) -> None:
    plain = connect(RedisSection(url=f"redis://127.0.0.1:{tls_redis.port}/0"), "plain")
    try:
        [verdict] = await evaluate(tick_watchdog(plain), None, time.time())
    finally:
        await plain.aclose()
    assert verdict.status is Status.UNKNOWN
    assert "redis: ConnectionError" in verdict.reason


async def test_watchdog_and_breaker_over_tls(
    admin: SyncRedis, supervisor_redis: Redis, certificates: Certificates
) -> None:
    assert supervisor_redis.connection_pool.connection_kwargs["ssl_ca_certs"] == str(
        certificates.ca_file
    )
    admin.set("ticks:last:SPX", str(time.time()))
    assert (await judge(tick_watchdog(supervisor_redis))).status is Status.OK
    config = RedisBreakerConfig.model_validate({"kind": "redis_breaker"})
    breaker = RedisBreaker("breaker", config, supervisor_redis)
    decision = Decision("ticks", Status.BREACH, ("breaker",), "stale", "inc-1", time.time())
    outcome = await breaker.engage(decision, ActionContext("tls-test", time.time()))
    assert outcome.changed
    assert json.loads(admin.get("circuit_breaker:state") or "{}")["state"] == "TRIPPED"


async def test_redis_with_a_wrong_ca_is_unknown_with_the_reason(
    tls_redis: RedisServer, certificates: Certificates, wrong_ca: Path
) -> None:
    url = with_ca(tls_redis.url, certificates.ca_file, wrong_ca)
    client = connect(RedisSection(url=url), "wrong-ca")
    try:
        verdict = await judge(tick_watchdog(client))
    finally:
        await client.aclose()
    assert verdict.status is Status.UNKNOWN
    assert CERTIFICATE_REFUSED in verdict.reason


async def test_redis_client_certificate_from_the_url(
    tmp_path: Path, certificates: Certificates
) -> None:
    """Mutual TLS: a Redis that requires a client certificate accepts the one named by the
    URL's `ssl_certfile` / `ssl_keyfile`, and refuses a client without one."""
    with running_redis(tmp_path, tls=certificates, client_certificates=True) as server:
        with_certificate = connect(RedisSection(url=server.url), "mtls")
        without = connect(RedisSection(url=server.url.partition("&ssl_certfile")[0]), "no-cert")
        try:
            # An empty Redis, read: "no tick" is a BREACH, not the UNKNOWN of "cannot read".
            assert (await judge(tick_watchdog(with_certificate))).status is Status.BREACH
            refused = await judge(tick_watchdog(without))
        finally:
            await with_certificate.aclose()
            await without.aclose()
    assert refused.status is Status.UNKNOWN
    assert "redis: ConnectionError" in refused.reason


# --- PostgreSQL -----------------------------------------------------------------------------


async def test_postgres_refuses_a_connection_without_tls(tls_postgres: PostgresServer) -> None:
    plain = tls_postgres.dsn.split("?")[0] + "?sslmode=disable"
    with pytest.raises(asyncpg.InvalidAuthorizationSpecificationError, match="no encryption"):
        await asyncpg.connect(plain, timeout=5)


async def test_sql_watchdog_and_audit_writer_over_tls(
    tmp_path: Path, tls_postgres: PostgresServer
) -> None:
    watchdog, source = sql_watchdog(tls_postgres.dsn)
    try:
        assert (await judge(watchdog)).status is Status.OK
    finally:
        await source.close()
    trail = AuditTrail(tmp_path, None, SecretStr(tls_postgres.dsn), "tls", "tls-test")
    event = audit_event()
    try:
        await trail.record(event)
    finally:
        await trail.close()
    assert event.id in await fetch_ids(tls_postgres.dsn)
    assert trail.outbox_size() == 0


async def test_postgres_with_a_wrong_ca_is_unknown_and_audits_to_the_outbox(
    tmp_path: Path,
    tls_postgres: PostgresServer,
    certificates: Certificates,
    wrong_ca: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    dsn = with_ca(tls_postgres.dsn, certificates.ca_file, wrong_ca)
    watchdog, source = sql_watchdog(dsn)
    try:
        verdict = await judge(watchdog)
    finally:
        await source.close()
    assert verdict.status is Status.UNKNOWN
    assert CERTIFICATE_REFUSED in verdict.reason
    trail = AuditTrail(tmp_path, None, SecretStr(dsn), "tls", "tls-test")
    with caplog.at_level(logging.WARNING, logger="supervisor.audit"):
        try:
            await trail.record(audit_event())
        finally:
            await trail.close()
    assert trail.outbox_size() == 1  # kept, to be replayed once the CA is right
    assert (tmp_path / AUDIT_OUTBOX_FILE).exists()
    assert any(CERTIFICATE_REFUSED in r.getMessage() for r in caplog.records), caplog.text


# --- the daemon -----------------------------------------------------------------------------


@pytest.mark.slow
def test_daemon_trips_and_audits_over_tls_only(
    tmp_path: Path,
    tls_redis: RedisServer,
    tls_postgres: PostgresServer,
    admin: SyncRedis,
    notify_socket: NotifySocket,
) -> None:
    postgres = '[postgres]\ndsn = "${PG_DSN}"\n'
    config, _ = write_config(tmp_path, tls_redis.url, extra=postgres)
    env = {"PG_DSN": tls_postgres.dsn}
    feed = TickFeed(tls_redis.url).start()
    daemon = Daemon(config, notify_socket, extra_env=env)
    try:
        notify_socket.wait_for("READY=1")
        feed.stop()
        wait_until(lambda: admin.get("circuit_breaker:state") is not None, 10, "a trip")
        notify_socket.wait_for("STATUS=REDUCE_ONLY")
        status = cli("status", "--config", str(config), extra_env=env)
        assert status.returncode == 0, status.stderr
        events = cli("events", "--since", "1h", "--config", str(config), extra_env=env)
        assert events.returncode == 0, events.stderr
        assert "breaker" in events.stdout
    finally:
        feed.stop()
        code = daemon.terminate()
    assert code == 0, daemon.log()
    assert "outbox" not in daemon.log()  # every event went straight to PostgreSQL
    assert asyncio.run(fetch_ids(tls_postgres.dsn, "actuator = 'breaker'"))


@pytest.mark.slow
def test_daemon_with_a_wrong_redis_ca_is_degraded_and_keeps_running(
    tmp_path: Path,
    tls_redis: RedisServer,
    certificates: Certificates,
    wrong_ca: Path,
    notify_socket: NotifySocket,
) -> None:
    url = with_ca(tls_redis.url, certificates.ca_file, wrong_ca)
    config, _ = write_config(tmp_path, url)
    daemon = Daemon(config, notify_socket)
    try:
        notify_socket.wait_for("READY=1")
        _, message = notify_socket.wait_for(CERTIFICATE_REFUSED)
        assert "STATUS=" in message and "DEGRADED: redis:" in message
        assert daemon.process.poll() is None
    finally:
        code = daemon.terminate()
    assert code == 0, daemon.log()
    assert CERTIFICATE_REFUSED in daemon.log()
    assert "Traceback" not in daemon.log()

"""poison_queue against a real PostgreSQL: each status, the oldest row's age, query errors,
and the database going away mid-run and coming back."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import asyncpg
import pytest
from pydantic import SecretStr

from supervisor.config.settings import Settings
from supervisor.errors import ConfigError
from supervisor.kinds import kind_gauges
from supervisor.model import Status, Verdict, Verdicts, WatchdogRun
from supervisor.protection import build_protection
from supervisor.publish.metrics import Metrics
from supervisor.sources.clients import open_clients
from supervisor.sources.postgres import Postgres
from supervisor.watchdogs.base import evaluate
from supervisor.watchdogs.poison_queue import PoisonQueue, PoisonQueueConfig
from testbed.postgres_server import PostgresServer

pytestmark = pytest.mark.anyio

COUNT_QUERY = "SELECT count(*) FROM alert_deliveries WHERE status = 'poison'"
OLDEST_QUERY = "SELECT min(failed_at) FROM alert_deliveries WHERE status = 'poison'"
TABLE = """
CREATE TABLE alert_deliveries (
    id serial PRIMARY KEY,
    channel text NOT NULL DEFAULT 'slack',
    recipient text NOT NULL DEFAULT '#alerts-ops',
    error_message text,
    retry_count int NOT NULL DEFAULT 0,
    status text NOT NULL,
    failed_at timestamptz,
    failed_at_naive timestamp,
    failed_at_epoch_ms bigint
)
"""


async def reset_table(dsn: str) -> asyncpg.Connection:
    connection = await asyncpg.connect(dsn)
    await connection.execute("DROP TABLE IF EXISTS alert_deliveries")
    await connection.execute(TABLE)
    return connection


async def add_rows(
    db: asyncpg.Connection, count: int, status: str = "poison", age_s: float = 60
) -> None:
    failed_at = time.time() - age_s
    await db.executemany(
        "INSERT INTO alert_deliveries (status, error_message, failed_at, failed_at_naive,"
        " failed_at_epoch_ms) VALUES ($1, 'webhook unreachable', to_timestamp($2),"
        " to_timestamp($2) AT TIME ZONE 'UTC', ($2 * 1000)::bigint)",
        [(status, failed_at)] * count,
    )


@pytest.fixture
async def db(postgres_server: PostgresServer) -> AsyncIterator[asyncpg.Connection]:
    connection = await reset_table(postgres_server.dsn)
    yield connection
    await connection.close()


@pytest.fixture
async def source(postgres_server: PostgresServer) -> AsyncIterator[Postgres]:
    postgres = Postgres(SecretStr(postgres_server.dsn), 2.0, "supervisor-test")
    yield postgres
    await postgres.close()


def watchdog(source: Postgres, **overrides: Any) -> PoisonQueue:
    fields: dict[str, Any] = {
        "name": "alert_poison_queue",
        "kind": "poison_queue",
        "query": COUNT_QUERY,
        "warn": 1,
        "breach": 10,
    }
    return PoisonQueue(PoisonQueueConfig.model_validate({**fields, **overrides}), source)


def by_subject(verdicts: Sequence[Verdict]) -> dict[str, Verdict]:
    return {v.subject: v for v in verdicts}


@pytest.mark.parametrize(
    ("rows", "status", "reason"),
    [
        (0, Status.OK, "poison queue 0 rows"),
        (1, Status.OK, "poison queue 1 rows"),  # warn = 1: `count > 1` warns
        (3, Status.WARN, "poison queue 3 rows > 1"),
        (12, Status.BREACH, "poison queue 12 rows > 10"),
        (101, Status.CRITICAL, "poison queue 101 rows > 100"),
    ],
)
async def test_each_status_of_the_count(
    db: asyncpg.Connection, source: Postgres, rows: int, status: Status, reason: str
) -> None:
    await add_rows(db, rows)
    await add_rows(db, 50, status="delivered")  # other statuses never count
    verdicts = await evaluate(watchdog(source, critical=100), None, time.time())
    assert [(v.subject, v.status, v.reason) for v in verdicts] == [("poison", status, reason)]
    assert verdicts[0].value == rows
    assert verdicts[0].unit == "rows"


async def test_runbook_target_zero_warns_on_one_row(
    db: asyncpg.Connection, source: Postgres
) -> None:
    await add_rows(db, 1)
    [verdict] = await evaluate(watchdog(source, warn=0), None, time.time())
    assert (verdict.status, verdict.reason) == (Status.WARN, "poison queue 1 rows > 0")


@pytest.mark.parametrize("column", ["failed_at", "failed_at_naive", "failed_at_epoch_ms"])
async def test_oldest_row_age_from_each_timestamp_type(
    db: asyncpg.Connection, source: Postgres, column: str
) -> None:
    await add_rows(db, 2, age_s=20 * 60)
    await add_rows(db, 1, age_s=30)
    oldest_query = f"SELECT min({column}) FROM alert_deliveries WHERE status = 'poison'"
    dog = watchdog(source, oldest_query=oldest_query, oldest_warn="15m", oldest_breach="1h")
    now = time.time()
    verdicts = by_subject(await evaluate(dog, None, now))
    assert verdicts["poison"].status is Status.WARN
    oldest = verdicts["oldest"]
    assert oldest.status is Status.WARN
    assert oldest.value == pytest.approx(1200, abs=1.5)
    assert oldest.unit == "s"
    assert oldest.reason.startswith("oldest poison row age 20.0m > 15.0m")
    assert oldest.deadline == pytest.approx(now - 1200 + 3600, abs=1.5)  # when it breaches


async def test_oldest_breach_and_empty_queue(db: asyncpg.Connection, source: Postgres) -> None:
    dog = watchdog(source, oldest_query=OLDEST_QUERY, oldest_warn="15m", oldest_breach="1h")
    verdicts = by_subject(await evaluate(dog, None, time.time()))
    assert (verdicts["oldest"].status, verdicts["oldest"].reason) == (Status.OK, "no poison rows")
    assert verdicts["oldest"].value is None
    await add_rows(db, 1, age_s=2 * 3600)
    verdicts = by_subject(await evaluate(dog, None, time.time()))
    assert verdicts["oldest"].status is Status.BREACH
    assert (
        verdicts["oldest"].reason == "oldest poison row age 2.0h > 60.0m"
    )  # units.format_duration


async def test_oldest_without_thresholds_is_measured_only(
    db: asyncpg.Connection, source: Postgres
) -> None:
    await add_rows(db, 1, age_s=5 * 86400)
    verdicts = by_subject(
        await evaluate(watchdog(source, oldest_query=OLDEST_QUERY), None, time.time())
    )
    assert verdicts["oldest"].status is Status.OK
    assert verdicts["oldest"].value == pytest.approx(5 * 86400, abs=2)


async def test_null_timestamp_with_rows_is_unknown(
    db: asyncpg.Connection, source: Postgres
) -> None:
    await db.execute("INSERT INTO alert_deliveries (status) VALUES ('poison')")
    verdicts = by_subject(
        await evaluate(watchdog(source, oldest_query=OLDEST_QUERY), None, time.time())
    )
    assert verdicts["poison"].status is Status.OK
    assert verdicts["oldest"].status is Status.UNKNOWN
    assert "returned NULL but the queue holds 1 rows" in verdicts["oldest"].reason


async def test_future_oldest_timestamp_is_unknown(db: asyncpg.Connection, source: Postgres) -> None:
    await add_rows(db, 1, age_s=-3600)
    verdicts = by_subject(
        await evaluate(watchdog(source, oldest_query=OLDEST_QUERY), None, time.time())
    )
    assert verdicts["oldest"].status is Status.UNKNOWN
    assert "in the future (clock skew?)" in verdicts["oldest"].reason


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("SELECT NULL::bigint", "poison queue: query returned NULL"),
        ("SELECT -3", "poison queue: count is negative (-3)"),
        ("SELECT 'many'", "poison queue: not a number: 'many'"),
        ("SELECT 'NaN'::float8", "poison queue: not a finite number: nan"),
        ("SELECT 1 WHERE false", "poison queue: query returned no rows"),
        ("SELECT FROM alert_deliveries", "poison queue: query returned no rows"),
        ("SELECT true", "poison queue: not a number: True"),
    ],
)
async def test_unreadable_count_is_unknown_with_the_reason(
    db: asyncpg.Connection, source: Postgres, query: str, reason: str
) -> None:
    [verdict] = await evaluate(watchdog(source, query=query), None, time.time())
    assert (verdict.status, verdict.reason) == (Status.UNKNOWN, reason)


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ("SELECT count(*) FROM no_such_table", 'UndefinedTableError: relation "no_such_table"'),
        ("SELEC count(*) FROM alert_deliveries", "PostgresSyntaxError: syntax error at or near"),
        (
            "INSERT INTO alert_deliveries (status) VALUES ('poison') RETURNING 1",
            "ReadOnlySQLTransactionError: cannot execute INSERT in a read-only transaction",
        ),
    ],
)
async def test_query_errors_are_unknown_with_class_and_message(
    db: asyncpg.Connection, source: Postgres, query: str, error: str
) -> None:
    [verdict] = await evaluate(watchdog(source, query=query), None, time.time())
    assert verdict.status is Status.UNKNOWN
    assert verdict.reason.startswith(f"poison queue: postgres: {error}")
    assert await db.fetchval("SELECT count(*) FROM alert_deliveries") == 0  # nothing written


async def test_a_failing_oldest_query_spoils_only_its_own_subject(
    db: asyncpg.Connection, source: Postgres
) -> None:
    await add_rows(db, 3)
    dog = watchdog(source, oldest_query="SELECT min(no_such_column) FROM alert_deliveries")
    verdicts = by_subject(await evaluate(dog, None, time.time()))
    assert verdicts["poison"].status is Status.WARN
    assert verdicts["oldest"].status is Status.UNKNOWN
    assert "UndefinedColumnError" in verdicts["oldest"].reason


async def test_slow_query_is_unknown_within_the_timeout(
    db: asyncpg.Connection, source: Postgres
) -> None:
    dog = watchdog(source, query="SELECT count(*) FROM pg_sleep(5)", timeout="300ms")
    started = time.monotonic()
    [verdict] = await evaluate(dog, None, time.time())
    assert time.monotonic() - started < 3  # cut off, not the 5 s query
    assert verdict.status is Status.UNKNOWN
    assert "300ms" in verdict.reason
    [verdict] = await evaluate(watchdog(source), None, time.time())  # the pool still works
    assert verdict.status is Status.OK


async def test_database_going_away_mid_run_and_coming_back(
    private_postgres: PostgresServer,
) -> None:
    db = await reset_table(private_postgres.dsn)
    await add_rows(db, 12)
    await db.close()
    source = Postgres(SecretStr(private_postgres.dsn), 1.0, "supervisor-test")
    dog = watchdog(source, oldest_query=OLDEST_QUERY)
    try:
        assert {v.status for v in await evaluate(dog, None, time.time())} == {
            Status.BREACH,
            Status.OK,
        }
        private_postgres.stop()
        for _ in range(2):  # the pooled connection is broken, then there is nobody to connect to
            verdicts = await evaluate(dog, None, time.time())
            assert {v.status for v in verdicts} == {Status.UNKNOWN}
            assert all("postgres: " in v.reason for v in verdicts), verdicts
        private_postgres.start()
        back = by_subject(await evaluate(dog, None, time.time()))
        assert back["poison"].status is Status.BREACH
        assert back["poison"].reason == "poison queue 12 rows > 10"
        assert back["oldest"].status is Status.OK
    finally:
        await source.close()


async def test_unreachable_database_from_the_start_is_unknown() -> None:
    source = Postgres(SecretStr("postgresql://nobody@127.0.0.1:1/none"), 0.5, "supervisor-test")
    try:
        [verdict] = await evaluate(watchdog(source), None, time.time())
    finally:
        await source.close()
    assert verdict.status is Status.UNKNOWN
    assert verdict.reason.startswith("poison queue: postgres: ")


def design_settings(dsn: str | None) -> Settings:
    watchdog_table = {
        "name": "alert_poison_queue",
        "kind": "poison_queue",
        "query": COUNT_QUERY,
        "warn": 1,
        "breach": 10,
    }
    postgres = {"dsn": dsn} if dsn else {}
    return Settings.model_validate({"postgres": postgres, "watchdogs": [watchdog_table]})


async def test_design_example_builds_and_needs_a_dsn(postgres_server: PostgresServer) -> None:
    settings = design_settings(postgres_server.dsn)
    clients = open_clients(settings.redis, settings.postgres, "supervisor-test")
    try:
        protection = build_protection(settings, clients)
        assert isinstance(protection.watchdogs["alert_poison_queue"], PoisonQueue)
    finally:
        await clients.redis.aclose()
        if clients.http is not None:
            await clients.http.aclose()
    with pytest.raises(ConfigError, match=r"alert_poison_queue\): needs \[postgres\] dsn"):
        build_protection(design_settings(None), clients)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"oldest_warn": "5m"}, "need an 'oldest_query'"),
        ({"direction": "below"}, "'direction' must be 'above'"),
        (
            {"oldest_query": OLDEST_QUERY, "oldest_warn": "1h", "oldest_breach": "5m"},
            "oldest thresholds: 'warn' (3600) must be below 'breach' (300)",
        ),
    ],
)
def test_config_refuses_inconsistent_oldest_settings(
    overrides: dict[str, Any], message: str
) -> None:
    fields = {"name": "p", "kind": "poison_queue", "query": COUNT_QUERY, "breach": 10}
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        PoisonQueueConfig.model_validate({**fields, **overrides})


def test_only_the_count_feeds_the_poison_queue_gauge() -> None:
    metrics = Metrics(kind_gauges=kind_gauges())
    verdicts = [
        Verdict("pq", "poison", Status.BREACH, "", 12.0, "rows"),
        Verdict("pq", "oldest", Status.OK, "", 600.0, "s"),
    ]
    metrics.observe_run(
        "poison_queue", WatchdogRun("pq", Status.BREACH, Verdicts.of(verdicts), 0.0, 0.01)
    )
    sample = metrics.registry.get_sample_value
    assert sample("supervisor_poison_queue_size", {"watchdog": "pq"}) == 12.0
    assert sample("supervisor_watchdog_value", {"watchdog": "pq", "subject": "oldest"}) == 600.0

"""sql_value against a real PostgreSQL: both directions, each status, what a query may
return, query errors, and the database going away mid-run and coming back."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import SecretStr

from supervisor.config.settings import Settings
from supervisor.model import Status, Verdict
from supervisor.protection import build_protection
from supervisor.sources.clients import open_clients
from supervisor.sources.postgres import Postgres
from supervisor.watchdogs.base import evaluate
from supervisor.watchdogs.sql_value import SqlValue, SqlValueConfig
from testbed.postgres_server import PostgresServer

pytestmark = pytest.mark.anyio


@pytest.fixture
async def source(postgres_server: PostgresServer) -> AsyncIterator[Postgres]:
    postgres = Postgres(SecretStr(postgres_server.dsn), 2.0, "supervisor-test")
    yield postgres
    await postgres.close()


def watchdog(source: Postgres, query: str, **overrides: Any) -> SqlValue:
    fields: dict[str, Any] = {"name": "lag", "kind": "sql_value", "query": query}
    fields |= {"warn": 10, "breach": 20, "critical": 30}
    return SqlValue(SqlValueConfig.model_validate({**fields, **overrides}), source)


async def judge(dog: SqlValue) -> Verdict:
    [verdict] = await evaluate(dog, None, time.time())
    return verdict


@pytest.mark.parametrize(
    ("value", "status", "reason"),
    [
        ("5", Status.OK, "lag 5"),
        ("10", Status.OK, "lag 10"),  # equal never crosses
        ("10.5::numeric", Status.WARN, "lag 10.5 > 10"),
        ("25::float8", Status.BREACH, "lag 25 > 20"),
        ("31::bigint", Status.CRITICAL, "lag 31 > 30"),
    ],
)
async def test_above_each_status(source: Postgres, value: str, status: Status, reason: str) -> None:
    verdict = await judge(watchdog(source, f"SELECT {value}"))
    assert (verdict.subject, verdict.status, verdict.reason) == ("lag", status, reason)


@pytest.mark.parametrize(
    ("value", "status", "reason"),
    [
        (100, Status.OK, "ticks 100 /min"),
        (49, Status.WARN, "ticks 49 /min < 50 /min"),
        (9, Status.BREACH, "ticks 9 /min < 10 /min"),
        (0, Status.CRITICAL, "ticks 0 /min < 1 /min"),
    ],
)
async def test_below_each_status_with_label_and_unit(
    source: Postgres, value: int, status: Status, reason: str
) -> None:
    overrides = {"direction": "below", "warn": 50, "breach": 10, "critical": 1}
    dog = watchdog(source, f"SELECT {value}", label="ticks", unit="/min", **overrides)
    verdict = await judge(dog)
    assert (verdict.subject, verdict.status, verdict.reason) == ("ticks", status, reason)
    assert (verdict.value, verdict.unit) == (value, "/min")


async def test_an_interval_is_judged_in_seconds(source: Postgres) -> None:
    verdict = await judge(watchdog(source, "SELECT now() - (now() - interval '25 seconds')"))
    assert (verdict.status, verdict.reason, verdict.unit) == (Status.BREACH, "lag 25s > 20s", "s")


async def test_first_column_of_the_first_row(source: Postgres) -> None:
    query = "SELECT v, 'ignored' FROM (VALUES (3), (50)) AS t(v) ORDER BY v"
    verdict = await judge(watchdog(source, query))
    assert (verdict.status, verdict.value) == (Status.OK, 3)


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("SELECT 1 WHERE false", "lag: query returned no rows"),
        ("SELECT NULL", "lag: query returned NULL"),
        ("SELECT 'soon'", "lag: not a number: 'soon'"),
        ("SELECT 'Infinity'::float8", "lag: not a finite number: inf"),
        ("SELECT false", "lag: not a number: False"),
        ("SELECT now()", "lag: not a number: a datetime"),
        ("SELECT 1 FROM missing_table", 'lag: postgres: UndefinedTableError: relation "missing'),
        ("SELECT 1/0", "lag: postgres: DivisionByZeroError: division by zero"),
        ("CREATE TABLE t (x int)", "lag: postgres: ReadOnlySQLTransactionError: cannot execute"),
    ],
)
async def test_what_cannot_be_judged_is_unknown_with_the_reason(
    source: Postgres, query: str, reason: str
) -> None:
    verdict = await judge(watchdog(source, query))
    assert verdict.status is Status.UNKNOWN
    assert verdict.reason.startswith(reason), verdict.reason
    assert verdict.value is None


async def test_database_going_away_mid_run_and_coming_back(
    private_postgres: PostgresServer,
) -> None:
    source = Postgres(SecretStr(private_postgres.dsn), 1.0, "supervisor-test")
    dog = watchdog(source, "SELECT 25")
    try:
        assert (await judge(dog)).status is Status.BREACH
        private_postgres.stop()
        down = await judge(dog)
        assert down.status is Status.UNKNOWN
        assert down.reason.startswith("lag: postgres: "), down.reason
        private_postgres.start()
        back = await judge(dog)
        assert (back.status, back.reason) == (Status.BREACH, "lag 25 > 20")
    finally:
        await source.close()


async def test_registered_as_a_component(postgres_server: PostgresServer) -> None:
    config = {"name": "lag", "kind": "sql_value", "query": "SELECT 1", "breach": 5}
    settings = Settings.model_validate(
        {"postgres": {"dsn": postgres_server.dsn}, "watchdogs": [config]}
    )
    clients = open_clients(settings.redis, settings.postgres, "supervisor-test")
    try:
        dog = build_protection(settings, clients).watchdogs["lag"]
        assert isinstance(dog, SqlValue)
        assert (await judge(dog)).status is Status.OK
    finally:
        await clients.redis.aclose()
        if clients.http is not None:
            await clients.http.aclose()
        if clients.postgres is not None:
            await clients.postgres.close()

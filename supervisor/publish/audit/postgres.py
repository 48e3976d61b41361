"""The audit trail's Postgres side: the table, its SQL, events as rows, and the writer."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import asyncpg
from pydantic import SecretStr

from supervisor import stored
from supervisor.constants import (
    AUDIT_CONNECT_TIMEOUT_S,
    AUDIT_RETRY_MAX_S,
    AUDIT_RETRY_MIN_S,
    AUDIT_TABLE,
)
from supervisor.errors import first_line
from supervisor.publish.audit.event import TEXT_FIELDS, AuditEvent
from supervisor.publish.audit.kinds import as_kind, as_outcome

log = logging.getLogger("supervisor.audit")

NIL_UUID = uuid.UUID(int=0)
FENCING_DETAIL = "fencing_token"  # the key of `detail` that holds the event's fencing token

# Every statement names the table through AUDIT_TABLE, built once here at import. Formatting
# it into SQL is safe: it is a constant of this code, never configuration or input (a table
# name cannot be a bind parameter).
CREATE_TABLE = f"""
CREATE TABLE IF NOT EXISTS {AUDIT_TABLE} (
    id uuid PRIMARY KEY,
    at timestamptz NOT NULL,
    kind text NOT NULL,
    actor text,
    instance text,
    watchdog text,
    actuator text,
    incident_id text,
    reason text,
    outcome text,
    duration_ms double precision,
    response_code int,
    detail jsonb
)"""
CREATE_INDEX = f"CREATE INDEX IF NOT EXISTS {AUDIT_TABLE}_at_idx ON {AUDIT_TABLE} (at)"
INSERT = f"""
INSERT INTO {AUDIT_TABLE} (id, at, kind, actor, instance, watchdog, actuator, incident_id,
                           reason, outcome, duration_ms, response_code, detail)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13::jsonb)
ON CONFLICT (id) DO NOTHING"""  # noqa: S608 (a constant table name, see above)
SELECT_PAGE = f"""
SELECT id, at, kind, actor, instance, watchdog, actuator, incident_id, reason, outcome,
       duration_ms, response_code, detail
FROM {AUDIT_TABLE} WHERE (at, id) > ($1, $2) ORDER BY at, id LIMIT $3"""  # noqa: S608 (likewise)

# A row Postgres refuses for its content: it is set aside, it must not block the outbox.
POISON = (asyncpg.exceptions.DataError, asyncpg.exceptions._base.DataError)
# Anything else from the database or the network: Postgres is away; retry later.
POSTGRES_AWAY = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)


# --- rows -----------------------------------------------------------------------------------


def to_row(event: AuditEvent) -> tuple[Any, ...]:
    """The INSERT arguments. Postgres text and jsonb cannot hold NUL or lone surrogates."""
    return (
        uuid.UUID(event.id),
        datetime.fromtimestamp(event.at, UTC),
        _clean(event.kind),
        *(_clean(getattr(event, name)) for name in TEXT_FIELDS),
        event.duration_ms,
        event.response_code,
        json.dumps(_scrub(_detail_with_token(event)), default=str),
    )


def _detail_with_token(event: AuditEvent) -> dict[str, Any]:
    """The fencing token travels in `detail` (detail->>'fencing_token'): a table a DBA created
    for an earlier version, which this one may not ALTER, takes it unchanged."""
    if event.fencing_token is None:
        return event.detail
    return {**event.detail, FENCING_DETAIL: event.fencing_token}


def _clean(text: str | None) -> str | None:
    if text is None:
        return None
    return text.encode("utf-8", "replace").decode("utf-8").replace("\x00", "\ufffd")


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return _clean(value)
    if isinstance(value, dict):
        return {_clean(str(k)): _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    return value


def from_row(row: Mapping[str, Any]) -> AuditEvent:
    detail = row["detail"]
    try:  # a row written by hand may hold any JSON: shown without its detail
        details = stored.decode_json(detail) if isinstance(detail, str) else {}
    except stored.Unreadable:
        details = {}
    details = details if isinstance(details, dict) else {}
    token = details.pop(FENCING_DETAIL, None)
    texts = {name: row[name] for name in TEXT_FIELDS}
    texts["outcome"] = as_outcome(texts["outcome"])
    return AuditEvent(
        id=str(row["id"]),
        at=row["at"].timestamp(),
        kind=as_kind(row["kind"]),
        **texts,
        duration_ms=row["duration_ms"],
        response_code=row["response_code"],
        fencing_token=token if isinstance(token, int) and not isinstance(token, bool) else None,
        detail=details,
    )


# --- the writer -----------------------------------------------------------------------------


class Writer:
    """One lazily opened, read-write connection; after a failure, reconnects with a backoff.

    `lock` serializes its users (an asyncpg connection runs one query at a time) and keeps the
    "Postgres or outbox" choice and the write it leads to in one step, which preserves order.
    """

    def __init__(self, dsn: SecretStr, application_name: str, clock: Callable[[], float]):
        self.lock = asyncio.Lock()
        self._dsn = dsn
        self._application_name = application_name
        self._clock = clock
        self._connection: asyncpg.Connection | None = None
        self._retry_at = 0.0
        self._backoff_s = AUDIT_RETRY_MIN_S
        self._away = False

    def available(self) -> bool:
        """False while backing off after a failure: the caller uses the outbox, at no cost."""
        return self._connection is not None or self._clock() >= self._retry_at

    async def insert(self, rows: list[tuple[Any, ...]]) -> bool:
        """Insert `rows` atomically; False if backing off. Raises on failure (see `failed`)."""
        if not rows:
            return True
        connection = await self._connect()
        if connection is None:
            return False
        await connection.executemany(INSERT, rows, timeout=AUDIT_CONNECT_TIMEOUT_S)
        return True

    def failed(self, exc: BaseException) -> None:
        """Postgres did not answer: drop the connection and back off."""
        if not self._away:
            log.warning(
                "audit: postgres unavailable (%s); events go to the outbox until it returns",
                first_line(exc),
            )
        self._away = True
        self._retry_at = self._clock() + self._backoff_s
        self._backoff_s = min(self._backoff_s * 2, AUDIT_RETRY_MAX_S)
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.terminate()

    async def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                await asyncio.wait_for(connection.close(), timeout=AUDIT_CONNECT_TIMEOUT_S)
            except (*POSTGRES_AWAY, asyncio.CancelledError):
                connection.terminate()

    async def _connect(self) -> asyncpg.Connection | None:
        if self._connection is not None and not self._connection.is_closed():
            return self._connection
        if not self.available():
            return None
        connection = await asyncpg.connect(
            self._dsn.get_secret_value(),
            timeout=AUDIT_CONNECT_TIMEOUT_S,
            command_timeout=AUDIT_CONNECT_TIMEOUT_S,
            server_settings={"application_name": self._application_name},
        )
        try:
            await ensure_table(connection)
        except BaseException:
            connection.terminate()
            raise
        self._connection = connection
        self._backoff_s = AUDIT_RETRY_MIN_S
        if self._away:
            log.info("audit: postgres reachable again")
            self._away = False
        return connection


async def ensure_table(connection: asyncpg.Connection) -> None:
    """Create the AUDIT_TABLE table and its index if missing. Safe with concurrent supervisors
    (an advisory lock), and needs no CREATE privilege when a DBA created the table."""
    if await connection.fetchval("SELECT to_regclass($1)", AUDIT_TABLE) is not None:
        return
    async with connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock(hashtext($1))", AUDIT_TABLE)
        await connection.execute(CREATE_TABLE)
        await connection.execute(CREATE_INDEX)

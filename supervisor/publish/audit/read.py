"""Reading the audit trail for `trading-supervisor events`: Postgres when it answers (plus
outbox lines not replayed yet), the `{ns}:events` stream otherwise."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
from pydantic import SecretStr
from redis.asyncio import Redis
from redis.exceptions import RedisError

from supervisor.constants import (
    AUDIT_CONNECT_TIMEOUT_S,
    AUDIT_OUTBOX_FILE,
    AUDIT_TABLE,
    EVENTS_FOLLOW_LOOKBACK_S,
    EVENTS_POLL_S,
    EVENTS_READ_LIMIT,
)
from supervisor.errors import first_line
from supervisor.keys import events_key
from supervisor.publish.audit.event import (
    AuditEvent,
    describe,
    event_from_stream,
    parse_lines,
)
from supervisor.publish.audit.postgres import NIL_UUID, POSTGRES_AWAY, SELECT_PAGE, from_row
from supervisor.publish.outbox import Outbox
from supervisor.quantities import parse_duration

log = logging.getLogger("supervisor.audit")

# --- reading the trail (`trading-supervisor events`) ----------------------------------------


@dataclass(frozen=True)
class SourcedEvent:
    event: AuditEvent
    source: str  # "postgres", "outbox" (not in Postgres yet) or "stream"


_PRIORITY = {"postgres": 0, "outbox": 1, "stream": 2}


class TrailReader:
    """Reads the trail: Postgres when it answers (plus outbox lines not replayed yet),
    otherwise the `{ns}:events` stream. Problems are collected in `notes`, never raised."""

    def __init__(
        self, state_dir: Path, redis: Redis | None, dsn: SecretStr | None, namespace: str
    ) -> None:
        self.notes: list[str] = []
        self._outbox = Outbox(state_dir / AUDIT_OUTBOX_FILE)
        self._redis = redis
        self._stream = events_key(namespace)
        self._dsn = dsn
        self._connection: asyncpg.Connection | None = None

    async def read(self, since: float) -> list[SourcedEvent]:
        """Events at or after `since`, oldest first, each once."""
        found = await self._from_postgres(since)
        if found is None:
            found = await self._from_stream(since)
        found += self._from_outbox(since)
        best: dict[str, SourcedEvent] = {}
        for item in found:
            known = best.get(item.event.id)
            if known is None or _PRIORITY[item.source] < _PRIORITY[known.source]:
                best[item.event.id] = item
        return sorted(best.values(), key=lambda s: (s.event.at, s.event.id))

    async def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.terminate()

    def _note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    async def _from_postgres(self, since: float) -> list[SourcedEvent] | None:
        if self._dsn is None:
            return None
        try:
            connection = await self._connect(self._dsn)
            return [SourcedEvent(e, "postgres") async for e in _select_since(connection, since)]
        except asyncpg.UndefinedTableError:
            self._note(
                f"postgres has no {AUDIT_TABLE} table yet: reading the {self._stream} stream"
            )
        except POSTGRES_AWAY as exc:
            self._note(f"postgres: {first_line(exc)}: reading the {self._stream} stream")
        await self.close()
        return None

    async def _connect(self, dsn: SecretStr) -> asyncpg.Connection:
        if self._connection is None or self._connection.is_closed():
            self._connection = await asyncpg.connect(
                dsn.get_secret_value(),
                timeout=AUDIT_CONNECT_TIMEOUT_S,
                command_timeout=AUDIT_CONNECT_TIMEOUT_S * 5,
                server_settings={
                    "application_name": "trading-supervisor-events",
                    "default_transaction_read_only": "on",
                },
            )
        return self._connection

    async def _from_stream(self, since: float) -> list[SourcedEvent]:
        if self._redis is None:
            return []
        try:
            entries = await self._redis.xrange(
                self._stream, min=f"{int(since * 1000)}-0", max="+", count=EVENTS_READ_LIMIT
            )
        except (RedisError, OSError) as exc:
            self._note(f"redis: {first_line(exc)}: the {self._stream} stream cannot be read")
            return []
        found = []
        for _entry_id, fields in entries or []:
            try:
                event = event_from_stream(fields or {})
            except ValueError:
                continue
            if event.at >= since:
                found.append(SourcedEvent(event, "stream"))
        return found

    def _from_outbox(self, since: float) -> list[SourcedEvent]:
        try:
            lines = self._outbox.read_all()
        except OSError as exc:
            self._note(f"cannot read the outbox {self._outbox.path}: {exc}")
            return []
        events, _torn = parse_lines(lines)
        return [SourcedEvent(e, "outbox") for e, _ in events if e.at >= since]


async def _select_since(connection: asyncpg.Connection, since: float) -> AsyncIterator[AuditEvent]:
    """Rows at or after `since` in (at, id) order, a page at a time."""
    after: tuple[datetime, uuid.UUID] = (datetime.fromtimestamp(since, UTC), NIL_UUID)
    while True:
        rows = await connection.fetch(SELECT_PAGE, *after, EVENTS_READ_LIMIT)
        for row in rows:
            yield from_row(row)
        if len(rows) < EVENTS_READ_LIMIT:
            return
        after = (rows[-1]["at"], rows[-1]["id"])


def parse_since(text: str, now: float) -> float:
    """`--since`: a duration ("1h": that long ago) or an ISO-8601 time (naive: local time),
    not before 1970 (no event is older; and Postgres' reader cannot even name such a time)."""
    since = _since(text, now)
    if since < 0:
        raise ValueError(f"invalid time {text!r}: that is before 1970")
    return since


def _since(text: str, now: float) -> float:
    try:
        return now - parse_duration(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text).timestamp()
    except (ValueError, OverflowError, OSError):
        raise ValueError(
            f"invalid time {text!r}: use a duration like '1h' or ISO-8601 like '2026-11-22T09:30'"
        ) from None


def format_event(item: SourcedEvent) -> str:
    """One readable line: local time with offset, then the journal form."""
    stamp = datetime.fromtimestamp(item.event.at).astimezone().isoformat(timespec="milliseconds")
    suffix = "  [outbox: not in postgres yet]" if item.source == "outbox" else ""
    return f"{stamp} {describe(item.event)}{suffix}"


def event_json(item: SourcedEvent) -> str:
    return json.dumps({**item.event.to_dict(), "source": item.source}, default=str)


async def show_events(
    reader: TrailReader,
    since: float,
    emit: Callable[[SourcedEvent], None],
    note: Callable[[str], None],
    follow: bool = False,
) -> None:
    """Emit each event since `since` once; with `follow`, poll every second until cancelled.

    While following, each poll re-reads the last EVENTS_FOLLOW_LOOKBACK_S before the newest
    event seen, so rows committed late (an HA peer, a replay) still show, once."""
    seen: dict[str, float] = {}
    cursor = since
    noted = 0
    while True:
        for item in await reader.read(cursor):
            if item.event.id not in seen:
                seen[item.event.id] = item.event.at
                emit(item)
        for text in reader.notes[noted:]:
            note(text)
        noted = len(reader.notes)
        if not follow:
            return
        cursor = max(since, max(seen.values(), default=since) - EVENTS_FOLLOW_LOOKBACK_S)
        seen = {k: at for k, at in seen.items() if at >= cursor}
        await asyncio.sleep(EVENTS_POLL_S)

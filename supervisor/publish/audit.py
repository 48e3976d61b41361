"""The audit trail: each decision and action, to Postgres, the `{ns}:events` stream, the journal.

`AuditTrail.record(event)` never raises. It logs one journal line (logger "supervisor.audit"),
XADDs the event to `{ns}:events` (capped, best effort: a Redis failure is logged once), and
stores it durably: in the `supervisor_events` table, or, when Postgres is not configured, away,
or the outbox still holds older events (order), as one fsync'd line of the outbox file in
`state_dir` (supervisor/publish/outbox.py). `replay()`, called every housekeeping cycle, moves
the outbox into Postgres in order, in batches of `INSERT ... ON CONFLICT (id) DO NOTHING`, then
removes exactly the lines it inserted. Every event carries a UUID primary key, so an event
inserted twice (a crash between INSERT and the outbox rewrite, a timeout after a commit, two
trails replaying copies of one outbox) is stored once. How long Postgres was away does not
matter to the mechanism: only the outbox's contents do.

`TrailReader` and `show_events` are the `trading-supervisor events` command's side.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from pydantic import SecretStr
from redis.asyncio import Redis
from redis.exceptions import RedisError

from supervisor.constants import (
    AUDIT_CONNECT_TIMEOUT_S,
    AUDIT_OUTBOX_FILE,
    AUDIT_REDIS_TIMEOUT_S,
    AUDIT_REJECTED_FILE,
    AUDIT_REPLAY_BATCH,
    AUDIT_REPLAY_MAX_EVENTS,
    AUDIT_RETRY_MAX_S,
    AUDIT_RETRY_MIN_S,
    AUDIT_TABLE,
    EVENTS_KEY,
    EVENTS_STREAM_MAXLEN,
)
from supervisor.errors import first_line
from supervisor.model import Decision
from supervisor.publish.outbox import Outbox, append_durably

log = logging.getLogger("supervisor.audit")

# Outcomes logged at WARNING (with every "manual" event); anything else at INFO.
FAILED_OUTCOMES = frozenset({"failed", "error", "timeout", "refused", "unverified", "escalated"})
_TEXT_FIELDS = ("actor", "instance", "watchdog", "actuator", "incident_id", "reason", "outcome")
_MAX_EPOCH_S = 1e11  # year 5138: anything later is a unit mistake
NIL_UUID = uuid.UUID(int=0)

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
INSERT = """
INSERT INTO supervisor_events (id, at, kind, actor, instance, watchdog, actuator, incident_id,
                               reason, outcome, duration_ms, response_code, detail)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13::jsonb)
ON CONFLICT (id) DO NOTHING"""
SELECT_PAGE = """
SELECT id, at, kind, actor, instance, watchdog, actuator, incident_id, reason, outcome,
       duration_ms, response_code, detail
FROM supervisor_events WHERE (at, id) > ($1, $2) ORDER BY at, id LIMIT $3"""

# A row Postgres refuses for its content: it is set aside, it must not block the outbox.
_POISON = (asyncpg.exceptions.DataError, asyncpg.exceptions._base.DataError)
# Anything else from the database or the network: Postgres is away; retry later.
POSTGRES_AWAY = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)


def events_key(namespace: str) -> str:
    return f"{namespace}:{EVENTS_KEY}"


# --- the event ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One decision, action, manual command, state change... as stored everywhere."""

    id: str
    at: float  # epoch seconds
    kind: str  # "decision", "action", "manual", "state", "config", ...
    actor: str | None = None  # instance id or operator
    instance: str | None = None
    watchdog: str | None = None
    actuator: str | None = None
    incident_id: str | None = None
    reason: str | None = None
    outcome: str | None = None  # "ok", "unchanged", "failed", "dry_run", ...
    duration_ms: float | None = None
    response_code: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def new(cls, kind: str, *, at: float | None = None, **fields: Any) -> AuditEvent:
        """A new event with a fresh uuid4 and the current time (unless `at` is given)."""
        return cls(id=str(uuid.uuid4()), at=time.time() if at is None else at, kind=kind, **fields)

    @property
    def is_warning(self) -> bool:
        return self.kind == "manual" or (self.outcome or "").lower() in FAILED_OUTCOMES

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), separators=(",", ":"), default=str).encode("utf-8")

    @classmethod
    def from_json(cls, raw: bytes | str) -> AuditEvent:
        """Parse and validate one outbox line; ValueError if it is not a whole, valid event."""
        return cls.from_dict(json.loads(raw))

    @classmethod
    def from_dict(cls, data: object) -> AuditEvent:
        if not isinstance(data, dict):
            raise ValueError("an audit event must be a JSON object")
        try:
            return cls(
                id=str(uuid.UUID(str(data["id"]))),
                at=_epoch(data["at"]),
                kind=_kind(data["kind"]),
                **{name: _optional_str(data.get(name), name) for name in _TEXT_FIELDS},
                duration_ms=_optional_float(data.get("duration_ms")),
                response_code=_optional_int(data.get("response_code")),
                detail=_detail(data.get("detail")),
            )
        except KeyError as exc:
            raise ValueError(f"an audit event needs {exc}") from None
        except TypeError as exc:
            raise ValueError(str(exc)) from None


def decision_event(decision: Decision, **fields: Any) -> AuditEvent:
    """The audit event of a policy decision."""
    return AuditEvent.new(
        "decision",
        at=decision.at,
        watchdog=decision.watchdog,
        incident_id=decision.incident_id,
        reason=decision.reason,
        outcome=decision.severity.name.lower(),
        detail={"actuators": list(decision.actuators)},
        **fields,
    )


def action_event(decision: Decision, actuator: str, outcome: str, **fields: Any) -> AuditEvent:
    """The audit event of one actuator's action on a decision (`duration_ms`, `response_code`,
    `detail` as keywords)."""
    return AuditEvent.new(
        "action",
        watchdog=decision.watchdog,
        actuator=actuator,
        incident_id=decision.incident_id,
        reason=decision.reason,
        outcome=outcome,
        **fields,
    )


def _epoch(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"invalid event time {value!r}")
    seconds = float(value)
    if not (math.isfinite(seconds) and 0 <= seconds < _MAX_EPOCH_S):
        raise ValueError(f"invalid event time {value!r}")
    return seconds


def _kind(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("an audit event needs a non-empty 'kind'")
    return value


def _optional_str(value: object, name: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ValueError(f"'{name}' must be a string")
    return value


def _optional_float(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"invalid duration_ms {value!r}")
    return float(value)


def _optional_int(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"invalid response_code {value!r}")
    return int(value)


def _detail(value: object) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError("'detail' must be a JSON object")
    return value


def describe(event: AuditEvent) -> str:
    """The one-line journal form: `decision watchdog=spx_ticks incident=... reason="..."`."""
    parts = [event.kind]
    labels = (
        ("actor", event.actor),
        ("watchdog", event.watchdog),
        ("actuator", event.actuator),
        ("incident", event.incident_id),
        ("outcome", event.outcome),
        ("code", event.response_code),
        ("duration_ms", None if event.duration_ms is None else f"{event.duration_ms:.1f}"),
    )
    parts += [f"{label}={value}" for label, value in labels if value is not None]
    if event.reason is not None:
        parts.append(f"reason={json.dumps(event.reason, ensure_ascii=False)}")
    if event.detail:
        parts.append(f"detail={json.dumps(event.detail, ensure_ascii=False, default=str)}")
    parts.append(f"id={event.id}")
    return " ".join(parts)


# --- rows and stream entries ----------------------------------------------------------------


def _row(event: AuditEvent) -> tuple[Any, ...]:
    """The INSERT arguments. Postgres text and jsonb cannot hold NUL or lone surrogates."""
    return (
        uuid.UUID(event.id),
        datetime.fromtimestamp(event.at, UTC),
        _clean(event.kind),
        *(_clean(getattr(event, name)) for name in _TEXT_FIELDS),
        event.duration_ms,
        event.response_code,
        json.dumps(_scrub(event.detail), default=str),
    )


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
    return AuditEvent(
        id=str(row["id"]),
        at=row["at"].timestamp(),
        kind=row["kind"],
        **{name: row[name] for name in _TEXT_FIELDS},
        duration_ms=row["duration_ms"],
        response_code=row["response_code"],
        detail=json.loads(detail) if isinstance(detail, str) else {},
    )


def stream_fields(event: AuditEvent) -> dict[str, str]:
    """Flat `{ns}:events` entry fields: None fields left out, `detail` as JSON."""
    fields = {
        name: str(value)
        for name, value in event.to_dict().items()
        if value is not None and name != "detail"
    }
    if event.detail:
        fields["detail"] = json.dumps(event.detail, separators=(",", ":"), default=str)
    return fields


def event_from_stream(fields: Mapping[Any, Any]) -> AuditEvent:
    """An event back from a stream entry's fields (bytes or str); ValueError if invalid."""
    data: dict[str, Any] = {_text(k): _text(v) for k, v in fields.items()}
    if "detail" in data:
        data["detail"] = json.loads(data["detail"])
    return AuditEvent.from_dict(data)


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


# --- the Postgres writer --------------------------------------------------------------------


class _Writer:
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
    """Create `supervisor_events` and its index if missing. Safe with concurrent supervisors
    (an advisory lock), and needs no CREATE privilege when a DBA created the table."""
    if await connection.fetchval("SELECT to_regclass($1)", AUDIT_TABLE) is not None:
        return
    async with connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock(hashtext($1))", AUDIT_TABLE)
        await connection.execute(CREATE_TABLE)
        await connection.execute(CREATE_INDEX)


# --- the trail ------------------------------------------------------------------------------


class AuditTrail:
    """Records events to the journal, the `{ns}:events` stream and Postgres or the outbox.

    Cheap to construct (no I/O). One per process; `close()` at shutdown.
    """

    def __init__(
        self,
        state_dir: Path,
        redis: Redis | None,
        dsn: SecretStr | None,
        namespace: str,
        instance: str,
        set_outbox_gauge: Callable[[float], None] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.outbox = Outbox(state_dir / AUDIT_OUTBOX_FILE)
        self.rejected_path = state_dir / AUDIT_REJECTED_FILE
        self.instance = instance
        self._redis = redis
        self._stream = events_key(namespace)
        self._set_outbox_gauge = set_outbox_gauge
        application_name = f"trading-supervisor-audit:{instance}"
        self._writer = _Writer(dsn, application_name, clock) if dsn is not None else None
        self._redis_failing = False
        self._replaying = asyncio.Lock()

    async def record(self, event: AuditEvent) -> None:
        """Journal, stream, Postgres or outbox. Never raises (cancellation aside: an event
        cancelled on its way to Postgres is written to the outbox first)."""
        try:
            event = self._stamped(event)
            log.log(logging.WARNING if event.is_warning else logging.INFO, "%s", describe(event))
            await self._to_stream(event)
            await self._store(event)
        except Exception:
            log.exception("audit: could not record event id=%s", event.id)

    async def replay(self) -> int:
        """Move outbox events into Postgres, in order; return how many were inserted (events
        already there count too: ON CONFLICT DO NOTHING). Cheap when the outbox is empty."""
        if self._writer is None or self._replaying.locked():
            self._update_gauge()
            return 0
        async with self._replaying:
            try:
                return await self._replay(self._writer)
            except Exception:
                log.exception("audit: outbox replay failed; it is retried next cycle")
                return 0
            finally:
                self._update_gauge()

    def outbox_size(self) -> int:
        """Events waiting in the outbox (a torn line counts until replay sets it aside)."""
        try:
            return self.outbox.size()
        except OSError as exc:
            log.error("audit: cannot read the outbox %s: %s", self.outbox.path, exc)
            return 0

    async def close(self) -> None:
        if self._writer is not None:
            await self._writer.close()

    # --- record -----------------------------------------------------------------------------

    def _stamped(self, event: AuditEvent) -> AuditEvent:
        if event.instance is None:
            event = replace(event, instance=self.instance)
        if event.actor is None:
            event = replace(event, actor=self.instance)
        return event

    async def _to_stream(self, event: AuditEvent) -> None:
        if self._redis is None:
            return
        try:
            async with asyncio.timeout(AUDIT_REDIS_TIMEOUT_S):
                await self._redis.xadd(
                    self._stream,
                    stream_fields(event),  # type: ignore[arg-type]
                    maxlen=EVENTS_STREAM_MAXLEN,
                    approximate=True,
                )
        except (RedisError, OSError, TimeoutError) as exc:
            if not self._redis_failing:
                log.warning("audit: cannot add to %s: %s", self._stream, first_line(exc))
            self._redis_failing = True
            return
        if self._redis_failing:
            log.info("audit: %s reachable again", self._stream)
            self._redis_failing = False

    async def _store(self, event: AuditEvent) -> None:
        writer = self._writer
        if writer is None or not writer.available() or not self.outbox.is_empty():
            self._to_outbox(event)
            return
        try:
            async with writer.lock:
                if self.outbox.is_empty() and await self._insert(writer, [event]):
                    return
                self._to_outbox(event)
        except asyncio.CancelledError:
            self._to_outbox(event)  # perhaps inserted already: the id makes that harmless
            raise

    async def _insert(self, writer: _Writer, events: list[AuditEvent]) -> bool:
        try:
            return await writer.insert([_row(e) for e in events])
        except _POISON as exc:
            log.warning("audit: postgres refused event(s): %s", first_line(exc))
            return False
        except POSTGRES_AWAY as exc:
            writer.failed(exc)
            return False

    def _to_outbox(self, event: AuditEvent) -> None:
        try:
            self.outbox.append(event.to_json())
        except OSError as exc:
            log.error(
                "audit: cannot write the outbox %s (%s): event id=%s is only in the journal",
                self.outbox.path,
                exc,
                event.id,
            )
        self._update_gauge()

    def _update_gauge(self) -> None:
        if self._set_outbox_gauge is not None:
            self._set_outbox_gauge(float(self.outbox_size()))

    # --- replay -----------------------------------------------------------------------------

    async def _replay(self, writer: _Writer) -> int:
        if self.outbox.is_empty() or not writer.available():
            return 0
        started = time.monotonic()
        head = self.outbox.read_head(AUDIT_REPLAY_MAX_EVENTS)
        consumed = inserted = 0
        for lines in _chunks(head.lines, AUDIT_REPLAY_BATCH):
            done = await self._replay_batch(writer, lines)
            if done is None:
                break
            consumed += len(lines)
            inserted += done
        left = self.outbox.drop_head(head, consumed)
        if consumed:
            log.info(
                "audit: replayed %d outbox events into postgres in %.0f ms (%d left)",
                inserted,
                (time.monotonic() - started) * 1000,
                left,
            )
        return inserted

    async def _replay_batch(self, writer: _Writer, lines: list[bytes]) -> int | None:
        """Insert one batch of outbox lines; the number inserted, or None if Postgres is away.
        Lines that are not events (a torn write) or that Postgres refuses are set aside."""
        events, rejected = parse_lines(lines)
        refused: list[bytes] = []
        async with writer.lock:
            try:
                if not await writer.insert([_row(e) for e, _ in events]):
                    return None
            except _POISON:
                refused = await self._insert_each(writer, events)
            except POSTGRES_AWAY as exc:
                writer.failed(exc)
                return None
        if rejected or refused:
            self._reject(rejected + refused)
        return len(events) - len(refused)

    async def _insert_each(
        self, writer: _Writer, events: list[tuple[AuditEvent, bytes]]
    ) -> list[bytes]:
        """One by one, to find the rows Postgres refuses; raises if Postgres goes away."""
        refused: list[bytes] = []
        for event, line in events:
            try:
                await writer.insert([_row(event)])
            except _POISON as exc:
                log.warning("audit: postgres refused event id=%s: %s", event.id, first_line(exc))
                refused.append(line)
        return refused

    def _reject(self, lines: list[bytes]) -> None:
        log.warning(
            "audit: %d outbox line(s) are not events Postgres can take (torn write?); kept in %s",
            len(lines),
            self.rejected_path,
        )
        append_durably(self.rejected_path, lines)


def parse_lines(lines: list[bytes]) -> tuple[list[tuple[AuditEvent, bytes]], list[bytes]]:
    events: list[tuple[AuditEvent, bytes]] = []
    rejected: list[bytes] = []
    for line in lines:
        try:
            events.append((AuditEvent.from_json(line), line))
        except ValueError:
            rejected.append(line)
    return events, rejected


def _chunks(items: list[bytes], size: int) -> Iterator[list[bytes]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]

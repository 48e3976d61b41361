"""`AuditTrail`: records each event to the journal, the `{ns}:events` stream, and Postgres or
the outbox; `replay()` moves the outbox into Postgres, in order (see the package docstring)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from redis.asyncio import Redis
from redis.exceptions import RedisError

from supervisor.constants import (
    AUDIT_OUTBOX_FILE,
    AUDIT_REDIS_TIMEOUT_S,
    AUDIT_REJECTED_FILE,
    AUDIT_REPLAY_BATCH,
    AUDIT_REPLAY_MAX_EVENTS,
    EVENTS_STREAM_MAXLEN,
)
from supervisor.errors import first_line
from supervisor.keys import events_key
from supervisor.publish.audit.event import (
    AuditEvent,
    describe,
    parse_lines,
    stream_fields,
)
from supervisor.publish.audit.postgres import POISON, POSTGRES_AWAY, Writer, to_row
from supervisor.publish.outbox import Outbox, append_durably
from supervisor.secrets import mask_urls
from supervisor.stored import SIGHTINGS
from supervisor.stored_redis import is_wrong_type, repair_types

log = logging.getLogger("supervisor.audit")


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
        self._namespace = namespace
        self._set_outbox_gauge = set_outbox_gauge
        application_name = f"trading-supervisor-audit:{instance}"
        self._writer = Writer(dsn, application_name, clock) if dsn is not None else None
        self._redis_failing = False
        self._replaying = asyncio.Lock()
        # Each event is recorded by a task of its own; two XADDs in flight on two pooled
        # connections can land in either order (one waits for a new connection, the other
        # does not). The lock is FIFO, and tasks reach it in the order they were spawned.
        self._stream_order = asyncio.Lock()

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
        """With its instance and actor, and every URL in its texts masked: whatever an
        actuator or a library put in a reason or a detail reaches the journal, the stream
        and Postgres only masked."""
        event = replace(event, reason=_masked(event.reason), detail=_masked(event.detail))
        if event.instance is None:
            event = replace(event, instance=self.instance)
        if event.actor is None:
            event = replace(event, actor=self.instance)
        return event

    async def _to_stream(self, event: AuditEvent) -> None:
        if self._redis is None:
            return
        try:
            async with self._stream_order, asyncio.timeout(AUDIT_REDIS_TIMEOUT_S):
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
            if is_wrong_type(exc):  # not a stream (written by hand): set aside, the next one
                await self._set_aside_stream()  # makes it right again
            return
        if self._redis_failing:
            log.info("audit: %s reachable again", self._stream)
            self._redis_failing = False

    async def _set_aside_stream(self) -> None:
        assert self._redis is not None
        with contextlib.suppress(RedisError, OSError, TimeoutError):
            async with asyncio.timeout(AUDIT_REDIS_TIMEOUT_S):
                await repair_types(self._redis, self._namespace, {self._stream: "stream"})

    async def _store(self, event: AuditEvent) -> None:
        writer = self._writer
        if writer is None or not writer.available() or not self.outbox.is_empty():
            await self._to_outbox(event)
            return
        try:
            async with writer.lock:
                if self.outbox.is_empty() and await self._insert(writer, [event]):
                    return
                await self._to_outbox(event)
        except asyncio.CancelledError:
            self._append(event)  # perhaps inserted already: the id makes that harmless
            raise

    async def _insert(self, writer: Writer, events: list[AuditEvent]) -> bool:
        try:
            return await writer.insert([to_row(e) for e in events])
        except POISON as exc:
            log.warning("audit: postgres refused event(s): %s", first_line(exc))
            return False
        except POSTGRES_AWAY as exc:
            writer.failed(exc)
            return False

    async def _to_outbox(self, event: AuditEvent) -> None:
        """The line is written here, in order with every other write and replay; the wait
        for the disk (an fsync that takes seconds while PostgreSQL checkpoints on a shared
        disk: nemesis seed 30) runs in a worker thread, so the loop renews the lease and
        feeds the systemd watchdog meanwhile. The event is recorded once it is on disk."""
        try:
            written = self.outbox.write(event.to_json())
            # Shielded: cancelled (the shutdown), the sync still runs and closes the file.
            syncing = asyncio.get_running_loop().run_in_executor(None, self.outbox.sync, written)
            await asyncio.shield(syncing)
        except OSError as exc:
            self._cannot_append(event, exc)
        self._update_gauge()

    def _append(self, event: AuditEvent) -> None:
        try:
            self.outbox.append(event.to_json())
        except OSError as exc:
            self._cannot_append(event, exc)
        self._update_gauge()

    def _cannot_append(self, event: AuditEvent, exc: OSError) -> None:
        log.error(
            "audit: cannot write the outbox %s (%s): event id=%s is only in the journal",
            self.outbox.path,
            exc,
            event.id,
        )

    def _update_gauge(self) -> None:
        if self._set_outbox_gauge is not None:
            self._set_outbox_gauge(float(self.outbox_size()))

    # --- replay -----------------------------------------------------------------------------

    async def _replay(self, writer: Writer) -> int:
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

    async def _replay_batch(self, writer: Writer, lines: list[bytes]) -> int | None:
        """Insert one batch of outbox lines; the number inserted, or None if Postgres is away.
        Lines that are not events (a torn write) or that Postgres refuses are set aside."""
        events, rejected = parse_lines(lines)
        refused: list[bytes] = []
        async with writer.lock:
            try:
                if not await writer.insert([to_row(e) for e, _ in events]):
                    return None
            except POISON:
                refused = await self._insert_each(writer, events)
            except POSTGRES_AWAY as exc:
                writer.failed(exc)
                return None
        if rejected or refused:
            self._reject(rejected + refused)
        return len(events) - len(refused)

    async def _insert_each(
        self, writer: Writer, events: list[tuple[AuditEvent, bytes]]
    ) -> list[bytes]:
        """One by one, to find the rows Postgres refuses; raises if Postgres goes away."""
        refused: list[bytes] = []
        for event, line in events:
            try:
                await writer.insert([to_row(event)])
            except POISON as exc:
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
        SIGHTINGS.count("audit-outbox", len(lines))


def _chunks(items: list[bytes], size: int) -> Iterator[list[bytes]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _masked(node: Any) -> Any:
    """`node` (a reason, a detail: JSON of any depth) with every URL in its strings masked."""
    if isinstance(node, str):
        return mask_urls(node)
    if isinstance(node, dict):
        return {_masked(key): _masked(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_masked(item) for item in node]
    return node

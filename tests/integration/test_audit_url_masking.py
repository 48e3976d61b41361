"""An audit event whose reason or detail holds a URL with credentials (an actuator's or a
library's message, whatever put it there) is recorded with that URL masked in every place:
the journal line, `{ns}:events` and the PostgreSQL row (issue 16, defects 5 and 6)."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

import asyncpg
import pytest
from pydantic import SecretStr
from redis.asyncio import Redis

from supervisor.keys import events_key
from supervisor.publish.audit import AuditEvent, AuditKind, AuditOutcome, AuditTrail
from testbed.postgres_server import PostgresServer

pytestmark = pytest.mark.anyio

SECRETS = ("USERTOKEN9a1", "JWTVALUE3c7", "NESTED5d2e", "FRAGMENT77f")


async def test_urls_in_a_reason_and_a_detail_are_masked_everywhere(
    tmp_path: Path,
    redis: Redis,
    postgres_server: PostgresServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    namespace = f"auditmask{uuid.uuid4().hex[:8]}"
    trail = AuditTrail(
        tmp_path / "state", redis, SecretStr(postgres_server.dsn), namespace, "sup-a"
    )
    event = AuditEvent.new(
        AuditKind.ACTION,
        outcome=AuditOutcome.FAILED,
        actuator="kill",
        reason="httpx: ConnectError for url 'https://USERTOKEN9a1@venue.example/kill?jwt=JWTVALUE3c7'",
        detail={
            "result": ["kill: FAILED: POST redis://NESTED5d2e@127.0.0.1:1/0"],
            "tried": {"url": "https://h/x?symbol=ES#FRAGMENT77f"},
        },
    )
    with caplog.at_level(logging.INFO, logger="supervisor.audit"):
        await trail.record(event)
    await trail.close()

    connection = await asyncpg.connect(postgres_server.dsn)
    try:
        row = await connection.fetchrow(
            "SELECT * FROM supervisor_events WHERE id = $1", uuid.UUID(event.id)
        )
    finally:
        await connection.close()
    assert row is not None
    stream = await redis.xrange(events_key(namespace))
    places = {"postgres": repr(dict(row)), "stream": repr(stream), "journal": caplog.text}
    for place, text in places.items():
        assert "venue.example/kill?jwt=" in text, place  # recorded, only masked
        assert "symbol=ES" in text, place
        leaked = [secret for secret in SECRETS if secret in text]
        assert not leaked, (place, leaked)

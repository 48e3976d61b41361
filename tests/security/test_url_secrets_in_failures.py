"""Issue 16, defects 5 and 6, end to end: a `kill` that fails, with credentials in its URLs
where the old masking did not look (a token as the whole user part, query parameters a
deny-list did not name, a percent-encoded name), as an operator runs it from the CLI. Each
secret is first shown to reach the venue (the server saw it), then searched for in every
place the failure is shown: the CLI's stdout and stderr (its log lines), the audit row in
PostgreSQL, `{ns}:events` in Redis, `events` and `config show`."""

from __future__ import annotations

import asyncio
import base64
import uuid
from pathlib import Path

import asyncpg
import pytest
from redis import Redis as SyncRedis

from testbed.daemon_process import cli, write_config
from testbed.http_server import HttpServer
from testbed.postgres_server import PostgresServer
from testbed.redis_server import RedisServer
from testbed.waiting import free_port

USER_TOKEN = "sk_live_USERLEAK7f3a"
BARE_TOKEN = "TOKENLEAK0c9d"
AUTH_VALUE = "authLEAK5e21"
ENCODED_NAME_VALUE = "pctLEAK88b0"
JWT_VALUE = "jwtLEAK41aa"
pytestmark = pytest.mark.slow

SECRETS = [USER_TOKEN, BARE_TOKEN, AUTH_VALUE, ENCODED_NAME_VALUE, JWT_VALUE]

ACTUATORS = """
[postgres]
dsn = "{dsn}"

[actuators.venue_kill]
kind = "http"
level = "halted"
method = "GET"
url = "http://{user_token}:@127.0.0.1:{port}/kill?symbol=ES&auth={auth}&%74oken={encoded}"
timeout = "500ms"
retry_for = "500ms"

[actuators.backup_kill]
kind = "http"
level = "halted"
url = "http://{bare_token}@127.0.0.1:{closed_port}/kill?jwt={jwt}"
timeout = "300ms"
retry_for = "600ms"
"""


def fetch_rows(dsn: str, namespace_marker: str) -> list[str]:
    async def fetch() -> list[str]:
        connection = await asyncpg.connect(dsn)
        try:
            rows = await connection.fetch(
                "SELECT * FROM supervisor_events WHERE reason = $1", namespace_marker
            )
        finally:
            await connection.close()
        return [repr(dict(row)) for row in rows]

    return asyncio.run(fetch())


def test_a_failing_kill_shows_no_credential_of_its_urls_anywhere(
    tmp_path: Path,
    redis_server: RedisServer,
    sync_redis: SyncRedis,
    postgres_server: PostgresServer,
) -> None:
    namespace = f"url{uuid.uuid4().hex[:8]}"
    reason = f"drill {namespace}: the venue refuses"
    with HttpServer() as venue:
        venue.answer_raw("/kill", b"refused", status=403)
        extra = ACTUATORS.format(
            dsn=postgres_server.dsn,
            user_token=USER_TOKEN,
            port=venue.port,
            auth=AUTH_VALUE,
            encoded=ENCODED_NAME_VALUE,
            bare_token=BARE_TOKEN,
            closed_port=free_port(),
            jwt=JWT_VALUE,
        )
        config, _ = write_config(tmp_path, redis_server.url, namespace=namespace, extra=extra)
        result = cli("kill", "--reason", reason, "--config", str(config))
        [seen] = venue.seen("/kill")
    # the secrets are in use: the venue got each of them
    assert (
        seen.headers["Authorization"]
        == "Basic " + base64.b64encode(f"{USER_TOKEN}:".encode()).decode()
    )
    assert seen.query == {"symbol": ["ES"], "auth": [AUTH_VALUE], "token": [ENCODED_NAME_VALUE]}
    assert result.returncode != 0, result.stdout + result.stderr
    cli_output = result.stdout + result.stderr
    assert "venue_kill: FAILED" in cli_output and "backup_kill: FAILED" in cli_output
    assert "symbol=ES" in cli_output  # a harmless parameter is still shown

    rows = fetch_rows(postgres_server.dsn, reason)
    assert len(rows) == 1 and "FAILED" in rows[0]
    stream = repr(sync_redis.xrange(f"{namespace}:events"))
    assert "FAILED" in stream
    events = cli("events", "--config", str(config))
    shown = cli("config", "show", "--config", str(config))
    assert "venue_kill" in shown.stdout

    places = {
        "CLI output and log lines": cli_output,
        "audit row in PostgreSQL": "\n".join(rows),
        "{ns}:events": stream,
        "`events`": events.stdout + events.stderr,
        "`config show`": shown.stdout + shown.stderr,
    }
    leaks = [
        f"{secret} in {place}"
        for place, text in places.items()
        for secret in SECRETS
        if secret in text
    ]
    assert not leaks, leaks

"""Secrets never leak: a full trip with known secret values, then every output is searched
for each of them.

The secrets: the Redis password (the ACL user's), the PostgreSQL password inside the DSN, an
HTTP kill switch's `Authorization: Bearer ${TOKEN}`, credentials in a URL (`user:password@`,
also as the Basic header they become) and `?token=` / `?api_key=` query values, on watchdogs
that answer and on one that cannot be reached (error paths write reasons too). Each is first
shown to be in use (the servers saw it), so "not found" means "not leaked", not "not used".

The outputs: the daemon's stderr (the journal), a /metrics scrape, every key and value in
Redis, every audit row in PostgreSQL, `config show`, `status --json`, `check --json`,
`events`, and every file under state_dir.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from redis import Redis as SyncRedis

from testbed.daemon_process import Daemon, cli, write_config
from testbed.http_server import HttpServer
from testbed.killswitch_server import Behaviour, KillSwitchServer
from testbed.notify_socket import NotifySocket
from testbed.postgres_server import PostgresServer, running_postgres
from testbed.redis_server import RedisServer
from testbed.tick_feed import TickFeed
from testbed.waiting import free_port, wait_until
from tests.security.conftest import REDIS_CREDENTIALS, SUPERVISOR_PASSWORD

pytestmark = pytest.mark.slow

# Distinct, URL-safe values: found anywhere, each names its own leak.
PG_PASSWORD = "pgpw-LEAK-4c1e9a"
BEARER_TOKEN = "bearer-LEAK-7d02fb"
USERINFO_PASSWORD = "userinfo-LEAK-51a3c8"
QUERY_TOKEN = "querytoken-LEAK-9e6b24"
QUERY_API_KEY = "apikey-LEAK-0f83d7"
BASIC_HEADER = base64.b64encode(f"probe:{USERINFO_PASSWORD}".encode()).decode()
SECRETS = {
    "redis password": SUPERVISOR_PASSWORD,
    "postgres password": PG_PASSWORD,
    "bearer token": BEARER_TOKEN,
    "url user:password": USERINFO_PASSWORD,
    "basic auth header": BASIC_HEADER,
    "url ?token=": QUERY_TOKEN,
    "url ?api_key=": QUERY_API_KEY,
}
ENV = {
    "REDIS_PASSWORD": SUPERVISOR_PASSWORD,
    "PG_DSN": "",  # set per test: the server's port is only known then
    "KILL_TOKEN": BEARER_TOKEN,
}

PROTECTION = """
[postgres]
dsn = "${{PG_DSN}}"

[actuators.venue_kill]
kind = "http"
level = "halted"
url = "{kill_url}"
headers = {{ Authorization = "Bearer ${{KILL_TOKEN}}" }}
retry_for = "5s"

[actuators.venue_kill.verify]
url = "{status_url}"
expect = "kill_switch_active == `true`"

[[watchdogs]]
name = "venue_health"
kind = "http_health"
url = "http://probe:{userinfo}@127.0.0.1:{http_port}/health"
interval = "500ms"
on_breach = ["venue_kill"]

[[watchdogs]]
name = "margin"
kind = "margin"
url = "http://127.0.0.1:{http_port}/account?token={token}&account=7"
utilization = "utilization"
breach = 0.9

[[watchdogs]]
name = "allocator_lag"
kind = "http_value"
url = "http://127.0.0.1:{http_port}/lag?api_key={api_key}"
path = "lag"
breach = 10

[[watchdogs]]
name = "unreachable"
kind = "http_value"
url = "http://probe:{userinfo}@127.0.0.1:{closed_port}/lag?token={token}&api_key={api_key}"
path = "lag"
breach = 10
"""


@pytest.fixture
def secret_postgres() -> Iterator[PostgresServer]:
    with running_postgres(password=PG_PASSWORD) as server:
        yield server


@pytest.fixture
def kill_switch() -> Iterator[KillSwitchServer]:
    with KillSwitchServer(Behaviour(token=BEARER_TOKEN)) as server:
        yield server


def write_secret_config(
    directory: Path, redis: RedisServer, http: HttpServer, kill_switch: KillSwitchServer
) -> tuple[Path, int]:
    protection = PROTECTION.format(
        kill_url=kill_switch.activate_url,
        status_url=kill_switch.status_url,
        http_port=http.port,
        closed_port=free_port(),
        userinfo=USERINFO_PASSWORD,
        token=QUERY_TOKEN,
        api_key=QUERY_API_KEY,
    )
    return write_config(
        directory,
        redis.url,
        namespace="supervisor",
        redis_extra=REDIS_CREDENTIALS,
        extra=protection,
    )


def test_no_secret_reaches_any_output(
    tmp_path: Path,
    acl_redis: RedisServer,
    admin: SyncRedis,
    secret_postgres: PostgresServer,
    http_server: HttpServer,
    kill_switch: KillSwitchServer,
    notify_socket: NotifySocket,
) -> None:
    env = {**ENV, "PG_DSN": secret_postgres.dsn}
    config, metrics_port = write_secret_config(tmp_path, acl_redis, http_server, kill_switch)
    http_server.answer_json("/health", {"ok": False}, status=503)  # the venue is down: kill
    http_server.answer_json("/account", {"utilization": 0.2})
    http_server.answer_json("/lag", {"lag": 1})
    outputs: dict[str, str] = {}
    feed = TickFeed(acl_redis.url).start()
    daemon = Daemon(config, notify_socket, extra_env=env)
    try:
        notify_socket.wait_for("READY=1")
        feed.stop()  # the breaker trips too
        wait_until(lambda: admin.get("circuit_breaker:state") is not None, 10, "the breaker")
        wait_until(lambda: kill_switch.active, 10, "the venue kill switch")
        notify_socket.wait_for("STATUS=HALTED")
        outputs["/metrics"] = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics").text
        outputs |= cli_outputs(config, env)
    finally:
        feed.stop()
        code = daemon.terminate()
    assert code == 0, daemon.log()
    assert_secrets_were_used(http_server, kill_switch)
    outputs["daemon stderr"] = daemon.log()
    outputs["redis"] = redis_dump(admin)
    outputs["postgres audit rows"] = asyncio.run(audit_rows(secret_postgres.dsn))
    outputs |= state_dir_files(tmp_path / "state")
    assert "venue_kill" in outputs["postgres audit rows"]  # the audit trail is not empty

    leaks = [
        f"{name} in {where}"
        for where, text in outputs.items()
        for name, secret in SECRETS.items()
        if secret in text
    ]
    assert leaks == [], "\n".join(leaks)


def cli_outputs(config: Path, env: dict[str, str]) -> dict[str, str]:
    """stdout and stderr of every CLI command that shows state or config; each must work
    (`check` exits 2 or 3 here: breaches, and a watchdog that cannot reach its URL)."""
    commands = {
        "config show": (["config", "show"], {0}),
        "status --json": (["status", "--json"], {0}),
        "check --json": (["check", "--json"], {2, 3}),
        "events": (["events", "--since", "1h"], {0}),
    }
    outputs = {}
    for name, (args, exit_codes) in commands.items():
        result = cli(*args, "--config", str(config), extra_env=env)
        assert result.returncode in exit_codes, (name, result.stderr)
        outputs[name] = result.stdout + result.stderr
    return outputs


def assert_secrets_were_used(http: HttpServer, kill_switch: KillSwitchServer) -> None:
    [health, *_] = http.seen("/health")
    assert health.headers.get("Authorization") == f"Basic {BASIC_HEADER}"
    assert http.seen("/account")[0].query["token"] == [QUERY_TOKEN]
    assert http.seen("/lag")[0].query["api_key"] == [QUERY_API_KEY]
    assert kill_switch.activation_requests()[0].headers["authorization"] == (
        f"Bearer {BEARER_TOKEN}"
    )


def redis_dump(admin: SyncRedis) -> str:
    """Every key and every value, read by its type."""
    lines = []
    for key in admin.scan_iter(count=1000):
        lines.append(repr(key))
        lines.append(repr(read_any(admin, key)))
    return "\n".join(lines)


def read_any(admin: SyncRedis, key: bytes) -> object:
    kind = admin.type(key)
    readers: dict[bytes, Callable[[], object]] = {
        b"string": lambda: admin.get(key),
        b"hash": lambda: admin.hgetall(key),
        b"list": lambda: admin.lrange(key, 0, -1),
        b"set": lambda: admin.smembers(key),
        b"zset": lambda: admin.zrange(key, 0, -1, withscores=True),
        b"stream": lambda: admin.xrange(key),
    }
    return readers[kind]() if kind in readers else f"<unread type {kind!r}>"


async def audit_rows(dsn: str) -> str:
    connection = await asyncpg.connect(dsn, timeout=5)
    try:
        rows = await connection.fetch("SELECT * FROM supervisor_events")
        return "\n".join(repr(dict(row)) for row in rows)
    finally:
        await connection.close()


def state_dir_files(state_dir: Path) -> dict[str, str]:
    return {
        f"state_dir/{path.relative_to(state_dir)}": path.read_text(errors="replace")
        for path in sorted(state_dir.rglob("*"))
        if path.is_file()
    }

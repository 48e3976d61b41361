"""deploy/redis/supervisor.acl as shipped: the daemon and the CLI work as that user, and the
user can do nothing else.

Completeness is proved by Redis itself: after a full trip through the real daemon and every
CLI command that talks to Redis, `ACL LOG` (every refusal Redis recorded) must be empty.
Tightness: commands, keys and channels outside the file are refused.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from redis import Redis as SyncRedis
from redis.asyncio import Redis
from redis.exceptions import AuthenticationError, ResponseError

from supervisor import manual
from supervisor.check_once import evaluate_all
from supervisor.config.loading import load_config
from supervisor.model import Status
from supervisor.remedies import release_orphan
from testbed.daemon_process import Daemon, cli, write_config
from testbed.notify_socket import NotifySocket
from testbed.redis_server import REDIS_SERVER, RedisServer
from testbed.tick_feed import TickFeed
from testbed.waiting import free_port, wait_until
from tests.security.conftest import (
    ACL_TEMPLATE,
    REDIS_CREDENTIALS,
    SUPERVISOR_PASSWORD,
    SUPERVISOR_USER,
    acl_denials,
)

REASON = "least-privilege drill: trip and reset as the ACL user"
SECRET_ENV = {"REDIS_PASSWORD": SUPERVISOR_PASSWORD}


def as_supervisor(server: RedisServer, password: str = SUPERVISOR_PASSWORD) -> SyncRedis:
    return SyncRedis.from_url(server.url, username=SUPERVISOR_USER, password=password)


def breaker_state(admin: SyncRedis) -> str | None:
    raw = admin.get("circuit_breaker:state")
    return None if raw is None else str(json.loads(raw)["state"])


def test_the_template_cannot_be_deployed_unedited(tmp_path: Path) -> None:
    """The password placeholder is not a valid hash: Redis refuses to start rather than run
    with a user whose password is written in this repository."""
    argv = [REDIS_SERVER, "--port", str(free_port()), "--bind", "127.0.0.1", "--save", ""]
    argv += ["--dir", str(tmp_path), "--aclfile", str(ACL_TEMPLATE)]
    result = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    assert result.returncode != 0
    assert "ACL" in result.stdout + result.stderr


# What a supervisor has no business doing; each must be refused (and logged by Redis).
OUTSIDE_THE_ACL = [
    pytest.param(("FLUSHALL",), id="flushall"),
    pytest.param(("CONFIG", "GET", "*"), id="config"),
    pytest.param(("KEYS", "*"), id="keys"),
    pytest.param(("SCAN", "0"), id="scan"),
    pytest.param(("ACL", "SETUSER", SUPERVISOR_USER, "+@all", "~*"), id="acl-setuser"),
    pytest.param(("SELECT", "1"), id="select"),
    pytest.param(("SCRIPT", "FLUSH"), id="script-flush"),
    pytest.param(("CLIENT", "KILL", "TYPE", "normal"), id="client-kill"),
    pytest.param(("GET", "orders:open"), id="key-outside-the-patterns"),
    pytest.param(("SET", "ticks:last:SPX", "1"), id="write-to-a-read-only-key"),
    pytest.param(("DEL", "ticks:last:SPX"), id="delete-a-read-only-key"),
    pytest.param(("PUBLISH", "orders", "x"), id="channel-outside-the-patterns"),
    pytest.param(("EVAL", "return redis.call('FLUSHALL')", "0"), id="flushall-inside-lua"),
    pytest.param(
        ("EVAL", "return redis.call('SET', KEYS[1], 'x')", "1", "orders:open"),
        id="lua-on-a-key-outside",
    ),
]


@pytest.mark.parametrize("command", OUTSIDE_THE_ACL)
def test_the_supervisor_user_is_refused_outside_the_acl(
    acl_redis: RedisServer, admin: SyncRedis, command: tuple[str, ...]
) -> None:
    admin.set("ticks:last:SPX", "1700000000000")
    admin.set("orders:open", "3")
    admin.acl_log_reset()
    client = as_supervisor(acl_redis)
    try:
        with pytest.raises(ResponseError):
            client.execute_command(*command)  # type: ignore[no-untyped-call]
    finally:
        client.close()
    assert len(acl_denials(admin)) == 1  # refused by the ACL, not for another reason
    assert admin.get("ticks:last:SPX") == b"1700000000000"
    assert admin.get("orders:open") == b"3"


def test_a_wrong_password_is_refused(acl_redis: RedisServer) -> None:
    client = as_supervisor(acl_redis, password="not-the-password")
    try:
        with pytest.raises(AuthenticationError):
            client.ping()
    finally:
        client.close()


@pytest.mark.slow
def test_daemon_and_cli_work_as_the_acl_user(
    tmp_path: Path, acl_redis: RedisServer, admin: SyncRedis, notify_socket: NotifySocket
) -> None:
    """A full trip by the daemon, then status, reset, a manual trip and events: all as the
    `supervisor` user of the shipped ACL, and Redis refused nothing along the way."""
    config, _ = write_config(
        tmp_path,
        acl_redis.url,
        namespace="supervisor",
        redis_extra=REDIS_CREDENTIALS,
        extra='[ha]\nenabled = true\nlease_ttl = "2s"\n',  # the lease's scripts too
    )

    def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
        return cli(*args, "--config", str(config), extra_env=SECRET_ENV)

    admin.acl_log_reset()
    feed = TickFeed(acl_redis.url).start()
    daemon = Daemon(config, notify_socket, extra_env=SECRET_ENV)
    try:
        notify_socket.wait_for("READY=1")
        feed.stop()
        wait_until(lambda: breaker_state(admin) == "TRIPPED", 10, "the daemon to trip")
        status = run_cli("status", "--json")
        assert status.returncode == 0, status.stderr
        published = json.loads(status.stdout)
        assert published["state"]["trading_state"] == "REDUCE_ONLY"
        assert [i["role"] for i in published["instances"]] == ["leader"]

        feed = TickFeed(acl_redis.url).start()  # the feed is back: the watchdog clears
        wait_until(lambda: _watchdog_status(admin) == b"OK", 10, "the watchdog to clear")
        reset = run_cli("reset", "breaker", "--reason", REASON, "--operator", "alice")
        assert reset.returncode == 0, reset.stderr
        assert breaker_state(admin) == "OPEN"
        trip = run_cli("trip", "--reason", REASON, "--operator", "alice")
        assert trip.returncode == 0, trip.stderr
        assert breaker_state(admin) == "TRIPPED"
        events = run_cli("events", "--since", "1h")
        assert events.returncode == 0, events.stderr
        assert REASON in events.stdout
    finally:
        feed.stop()
        code = daemon.terminate()
    assert code == 0, daemon.log()
    assert acl_denials(admin) == [], daemon.log()
    assert "NOPERM" not in daemon.log()


def _watchdog_status(admin: SyncRedis) -> bytes | None:
    status = admin.hget("supervisor:watchdog:spx_ticks", "status")
    return status if isinstance(status, bytes) else None


# Every kind that reads or writes Redis, on keys of the test's choosing: the example config
# uses only two of them, but the ACL's command list must serve them all (only the key
# patterns are per deployment).
EVERY_REDIS_KIND = """
[supervisor]
instance_id = "probe"
namespace = "supervisor"
state_dir = "{state_dir}"

[redis]
url = "{url}"
username = "probe"
password = "probe-pw"

[actuators.breaker]
kind = "redis_breaker"
level = "reduce_only"

[actuators.halt]
kind = "redis_flag"
level = "halted"
key = "trading:halt"

[[watchdogs]]
name = "ticks_stream"
kind = "tick_freshness"
key = "md:{{instrument}}"
instruments = ["SPX"]
stream = true
breach = "15s"

[[watchdogs]]
name = "ticks_hash"
kind = "tick_freshness"
key = "quotes"
instruments = ["SPX"]
field = "ts"
breach = "15s"

[[watchdogs]]
name = "locks"
kind = "lock_ttl"
keys = ["lock:orders"]
release_orphans = true

[[watchdogs]]
name = "breaker_owner"
kind = "cb_staleness"
key = "circuit_breaker:state"
json_field = "updated_at"

[[watchdogs]]
name = "lag"
kind = "redis_value"
key = "risk"
field = "lag"
breach = 10

[[watchdogs]]
name = "margin"
kind = "margin"
redis_key = "account"
used = "used"
equity = "equity"
breach = 0.9
"""


@pytest.mark.anyio
async def test_every_redis_kind_needs_no_command_outside_the_acl(
    tmp_path: Path, acl_redis: RedisServer, admin: SyncRedis
) -> None:
    """A user with the shipped command list (and every key): each Redis watchdog kind reads,
    `kill` and `trip` engage and reset both Redis actuators, an orphan lock is released. Redis
    refuses none of it."""
    admin.acl_setuser(
        "probe",
        enabled=True,
        passwords=["+probe-pw"],
        keys=["*"],
        channels=["*"],
        commands=_commands(),
        reset=True,
    )
    _write_watched_keys(admin)
    path = tmp_path / "probe.toml"
    path.write_text(EVERY_REDIS_KIND.format(state_dir=tmp_path / "state", url=acl_redis.url))
    settings = load_config(path)
    admin.acl_log_reset()

    verdicts = await evaluate_all(settings, set(), time.time)
    assert {v.watchdog for v in verdicts} == {w.name for w in settings.watchdogs}
    assert not [v for v in verdicts if v.status is Status.UNKNOWN], verdicts
    for group in ("breaker", "kill"):
        await manual.engage(settings, group, REASON, "alice")
        admin.delete("supervisor:reset_lock")  # one reset a minute: lifted for the probe
        await manual.reset(settings, group, REASON, "alice", force=True)
    probe = Redis.from_url(acl_redis.url, username="probe", password="probe-pw")
    try:
        assert await release_orphan(probe, "lock:orders", b"owner-1") == "released"
    finally:
        await probe.aclose()
    assert acl_denials(admin) == []


def _commands() -> list[str]:
    """The command rules of the shipped file (`-@all`, `+get`...), without its keys."""
    rules = ACL_TEMPLATE.read_text(encoding="utf-8").split()
    return [rule for rule in rules if rule[0] in "+-"]


def _write_watched_keys(admin: SyncRedis) -> None:
    """Healthy values for every watchdog of EVERY_REDIS_KIND, written as the stack would."""
    now = time.time()
    admin.xadd("md:SPX", {"px": "1"})
    admin.hset("quotes", "ts", str(now))
    admin.set("lock:orders", "owner-1")  # no expiry: an orphan (BREACH, not UNKNOWN)
    admin.set("circuit_breaker:state", json.dumps({"state": "OPEN", "updated_at": now}))
    admin.hset("risk", "lag", "2")
    admin.hset("account", mapping={"used": "10", "equity": "100"})

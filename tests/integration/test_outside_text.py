"""Text from outside through the whole daemon: a Prometheus label, a Redis value, a tick and an
operator's `--reason` holding newlines, ANSI/OSC escapes and a bidi override. The in-process
daemon (as in test_daemon_logic.py) with its notifier on a real sd_notify socket and a journal
formatter on its log: no sd_notify assignment, journal line, `status` line or `events` line is
ever forged, and no escape reaches a terminal."""

from __future__ import annotations

import io
import logging
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import anyio
import pytest
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from supervisor import manual
from supervisor.cli import main
from supervisor.config.loading import load_config
from supervisor.daemon import Supervisor
from supervisor.kinds import kind_gauges
from supervisor.publish.logging import JournalFormatter
from supervisor.publish.metrics import Metrics
from supervisor.publish.systemd import Notifier
from supervisor.text import STATUS_LINE_MAX_CHARS, is_unsafe
from testbed.config_blocks import supervisor_tables
from testbed.http_server import HttpServer
from testbed.notify_socket import NotifySocket
from testbed.redis_server import RedisServer

pytestmark = pytest.mark.anyio

EVIL = "\nWATCHDOG=trigger\nSTOPPING=1\n\x1b]0;evil\x07\u202e"
REASON = "drill from outside" + EVIL + " " + "long " * 2000  # and 10 kB
ASSIGNMENTS = ("READY=", "STATUS=", "WATCHDOG=1", "STOPPING=", "RELOADING=")

CONFIG = """
[actuators.breaker]
kind = "redis_breaker"
level = "reduce_only"

[[watchdogs]]
name = "venues"
kind = "prometheus_query"
url = "{prometheus}"
query = "up"
breach = 1
on_breach = ["breaker"]

[[watchdogs]]
name = "depth"
kind = "redis_value"
key = "depth"
breach = 10

[[watchdogs]]
name = "ticks"
kind = "tick_freshness"
key = "ticks:{{instrument}}"
instruments = ["SPX"]
breach = "10s"
"""


@pytest.fixture
def journal() -> Iterator[io.StringIO]:
    """What the daemon logs, as journald would receive it on stderr."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JournalFormatter("%(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    yield stream
    root.removeHandler(handler)


@pytest.fixture
def config_path(tmp_path: Path, redis_server: RedisServer, http_server: HttpServer) -> Path:
    path = tmp_path / "supervisor.toml"
    tables = supervisor_tables(tmp_path / "state", redis_server.url, instance_id="sup-text")
    text = tables + CONFIG.format(prometheus=http_server.url())
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
async def supervisor(
    config_path: Path, redis: Redis, notify_socket: NotifySocket
) -> AsyncIterator[Supervisor]:
    metrics = Metrics(CollectorRegistry(), kind_gauges=kind_gauges())
    notifier = Notifier(notify_socket.path)
    daemon = Supervisor(load_config(config_path), config_path, metrics=metrics, notifier=notifier)
    yield daemon
    await daemon.context.assembly.close()
    notifier.close()


async def settle(daemon: Supervisor) -> None:
    for _ in range(50):
        pending = [task for task in daemon.context.tasks.in_flight if not task.done()]
        if not pending:
            return
        for task in pending:
            await task


async def feed_outside_text(daemon: Supervisor, redis: Redis, http_server: HttpServer) -> None:
    """Every watchdog judges text from outside; the Prometheus one trips the breaker with it."""
    series = {"metric": {"venue": "binance" + EVIL}, "value": [time.time(), "5"]}
    http_server.answer_json(
        "/api/v1/query", {"status": "success", "data": {"resultType": "vector", "result": [series]}}
    )
    await redis.set("depth", "12" + EVIL)
    await redis.set("ticks:SPX", "soon" + EVIL)
    for name in ("venues", "depth", "ticks"):
        await daemon.cycle.run(name)
    await settle(daemon)
    daemon.display.refresh()


async def cli(*args: str) -> int:
    """The command in-process, in a thread of its own (it runs its own event loop)."""
    return await anyio.to_thread.run_sync(main, list(args))


def assert_no_forged_assignment(sock: NotifySocket) -> list[str]:
    """Every datagram's lines are assignments we send, at most one STATUS each; returns the
    STATUS values."""
    sock.drain()
    statuses = []
    for _at, message in sock.messages:
        lines = message.split("\n")
        assert all(line.startswith(ASSIGNMENTS) for line in lines), message
        assert sum(line.startswith("STATUS=") for line in lines) <= 1, message
        statuses += [line.removeprefix("STATUS=") for line in lines if line.startswith("STATUS=")]
    for status in statuses:
        assert not any(is_unsafe(c) for c in status)
        assert len(status) <= STATUS_LINE_MAX_CHARS
    return statuses


def assert_one_line_per_record(journal: io.StringIO) -> list[str]:
    lines = journal.getvalue().splitlines()
    assert lines
    for line in lines:
        assert line[:3] in ("<2>", "<3>", "<4>", "<6>", "<7>"), line
        assert not any(is_unsafe(c) for c in line), line
    return lines


async def test_outside_text_from_watchdogs_never_forges_status_or_journal_lines(
    supervisor: Supervisor,
    redis: Redis,
    http_server: HttpServer,
    notify_socket: NotifySocket,
    journal: io.StringIO,
) -> None:
    await feed_outside_text(supervisor, redis, http_server)
    statuses = assert_no_forged_assignment(notify_socket)
    assert any(
        s.startswith("REDUCE_ONLY: ") and "binance\\x0aWATCHDOG=trigger" in s for s in statuses
    )
    lines = assert_one_line_per_record(journal)
    assert not any(line[3:].startswith(("WATCHDOG=", "STOPPING=", "\x1b")) for line in lines)


async def test_an_operators_reason_never_forges_status_journal_status_or_events_lines(
    supervisor: Supervisor,
    redis: Redis,
    notify_socket: NotifySocket,
    journal: io.StringIO,
    config_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = supervisor.context.assembly.settings
    done = await manual.engage(settings, "breaker", REASON, "op\x1b[31m\n")
    assert done.message == "breaker: engaged"
    await supervisor.reconciler.refresh()  # the daemon notices the manual trip
    await settle(supervisor)
    supervisor.display.refresh()
    await supervisor.publishing.publish_state()
    await settle(supervisor)

    statuses = assert_no_forged_assignment(notify_socket)
    [tripped] = [s for s in statuses if s.startswith("REDUCE_ONLY")]
    assert tripped.startswith("REDUCE_ONLY: manual trip by op\\x1b[31m\\x0a: drill from outside")
    assert tripped.endswith("…")
    lines = assert_one_line_per_record(journal)
    assert all(len(line) <= 2100 for line in lines)

    capsys.readouterr()
    assert await cli("status", "--config", str(config_path)) == 0
    status = capsys.readouterr().out
    assert not any(is_unsafe(c) for c in status.replace("\n", ""))
    assert status.count("\n") == 8 + 1 + 1 + 3  # eight fields, a blank, a header, 3 watchdogs
    assert (
        "reason:        manual trip by op\\x1b[31m\\x0a: drill from outside\\x0aWATCHDOG" in status
    )

    assert await cli("events", "--config", str(config_path), "--since", "5m") == 0
    events = capsys.readouterr().out.splitlines()
    assert len(events) == 1 and " manual actor=op\\x1b[31m\\x0a " in events[0]
    assert not any(is_unsafe(c) for c in events[0])

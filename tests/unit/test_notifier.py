"""sd_notify over a real datagram socket: UTF-8, and a socket that cannot be reached is said
once (the sdnotify package swallowed every error)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from supervisor.publish.systemd import Notifier
from testbed.notify_socket import NotifySocket


@pytest.fixture
def listener() -> Iterator[NotifySocket]:
    sock = NotifySocket()
    yield sock
    sock.close()


def test_status_arrives_as_utf8_and_only_when_it_changes(listener: NotifySocket) -> None:
    notifier = Notifier(listener.path)
    try:
        notifier.ready("ACTIVE: 1 of 1 watchdogs OK")
        notifier.status("REDUCE_ONLY: breaker tripped by spx — SPX age 17.2s > 15s")
        notifier.status("REDUCE_ONLY: breaker tripped by spx — SPX age 17.2s > 15s")
        notifier.watchdog()
        listener.wait_for("WATCHDOG=1")
    finally:
        notifier.close()
    messages = [message for _at, message in listener.messages]
    assert messages == [
        "READY=1\nSTATUS=ACTIVE: 1 of 1 watchdogs OK",
        "STATUS=REDUCE_ONLY: breaker tripped by spx — SPX age 17.2s > 15s",
        "WATCHDOG=1",
    ]


def test_a_socket_pointing_nowhere_is_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    notifier = Notifier(str(tmp_path / "nobody-listens"))
    try:
        with caplog.at_level(logging.ERROR, logger="supervisor.publish.systemd"):
            for _ in range(3):
                notifier.watchdog()
    finally:
        notifier.close()
    (record,) = caplog.records
    assert "nobody-listens" in record.getMessage()
    assert "systemd sees no READY, STATUS or WATCHDOG" in record.getMessage()


def test_without_notify_socket_nothing_is_opened(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    notifier = Notifier()
    assert not notifier.enabled
    notifier.status("ACTIVE")  # does nothing, raises nothing
    notifier.close()

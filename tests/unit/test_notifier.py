"""sd_notify over a real datagram socket: UTF-8, a socket that cannot be reached is said
once (the sdnotify package swallowed every error), and a full one never blocks."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import tempfile
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


@pytest.fixture
def unread_socket() -> Iterator[tuple[str, socket.socket]]:
    """A real AF_UNIX datagram socket that nobody reads: its queue fills after
    net.unix.max_dgram_qlen datagrams (10 by default), as systemd's does when it is busy."""
    directory = tempfile.mkdtemp(prefix="sdn")  # short: AF_UNIX paths stop at 108 bytes
    path = os.path.join(directory, "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    yield path, sock
    sock.close()
    shutil.rmtree(directory)


def test_a_full_socket_drops_notifications_instead_of_blocking(
    unread_socket: tuple[str, socket.socket], caplog: pytest.LogCaptureFixture
) -> None:
    notifier = Notifier(unread_socket[0])
    try:
        with caplog.at_level(logging.WARNING, logger="supervisor.publish.systemd"):
            for _ in range(200):  # a blocking send would hang here, at about the 11th
                notifier.watchdog()
            notifier.status("REDUCE_ONLY: breaker tripped")
    finally:
        notifier.close()
    assert notifier.dropped > 100
    (record,) = caplog.records  # said once for the whole run of drops
    assert "dropped rather than wait" in record.getMessage()


def test_a_dropped_status_is_sent_with_the_next_update(
    unread_socket: tuple[str, socket.socket],
) -> None:
    path, sock = unread_socket
    notifier = Notifier(path)
    try:
        while notifier.notify("WATCHDOG=1"):  # fill the queue
            pass
        notifier.status("HALTED: kill switch")  # dropped
        sock.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            while True:  # systemd catches up
                sock.recv(4096)
        notifier.status("HALTED: kill switch")
        assert sock.recv(4096) == b"STATUS=HALTED: kill switch"
    finally:
        notifier.close()

"""Notifier: whatever a reason holds, each datagram carries exactly the assignments we meant."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from supervisor.publish.systemd import Notifier
from supervisor.text import STATUS_LINE_MAX_CHARS
from testbed.notify_socket import NotifySocket

EVIL = "breaker tripped: \nWATCHDOG=trigger\nSTOPPING=1\r\x1b]0;evil\x07 \u202eSPX\u2028x\x85y"


@pytest.fixture
def notified(notify_socket: NotifySocket) -> Iterator[tuple[Notifier, NotifySocket]]:
    notifier = Notifier(notify_socket.path)
    yield notifier, notify_socket
    notifier.close()


def only_message(sock: NotifySocket) -> str:
    sock.drain()
    assert len(sock.messages) == 1
    return sock.messages[0][1]


@pytest.mark.parametrize(
    ("send", "first"),
    [
        (Notifier.status, None),
        (Notifier.ready, "READY=1"),
        (Notifier.stopping, "STOPPING=1"),
    ],
)
def test_a_status_from_outside_stays_one_status_line(
    notified: tuple[Notifier, NotifySocket],
    send: Callable[[Notifier, str], None],
    first: str | None,
) -> None:
    notifier, sock = notified
    send(notifier, EVIL)
    lines = only_message(sock).split("\n")
    expected = [first] if first else []
    assert lines[:-1] == expected
    status = lines[-1]
    assert status.startswith("STATUS=breaker tripped: \\x0aWATCHDOG=trigger\\x0aSTOPPING=1")
    assert "\x1b" not in status and "\u202e" not in status and "\x85" not in status
    assert len(status.splitlines()) == 1


def test_a_ten_kilobyte_status_is_cut_with_a_marker(
    notified: tuple[Notifier, NotifySocket],
) -> None:
    notifier, sock = notified
    notifier.status("x" * 10_000)
    status = only_message(sock).removeprefix("STATUS=")
    assert len(status) == STATUS_LINE_MAX_CHARS and status.endswith("…")


def test_an_unchanged_status_is_sent_once(notified: tuple[Notifier, NotifySocket]) -> None:
    notifier, sock = notified
    notifier.status("ACTIVE: ok\n")
    notifier.status("ACTIVE: ok\n")
    assert only_message(sock) == "STATUS=ACTIVE: ok\\x0a"

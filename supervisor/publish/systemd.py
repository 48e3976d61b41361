"""sd_notify: READY, WATCHDOG, STATUS, RELOADING, STOPPING over $NOTIFY_SOCKET.

Written here rather than with the sdnotify package, which encodes as latin-1 (a STATUS with
"—" never arrives), swallows every error (a NOTIFY_SOCKET pointing nowhere goes unnoticed)
and leaks its socket when NOTIFY_SOCKET is unset. This one sends UTF-8, says once that the
socket cannot be reached, and closes what it opened.

The socket is non-blocking: systemd reads its notification socket in its own event loop, and
once about ten datagrams are left unread (net.unix.max_dgram_qlen) a blocking send would stop
this daemon's event loop, watchdogs and all, until systemd catches up. A notification that
would block is dropped instead, counted in `dropped`, and said once per run of drops (a STATUS
that was dropped is sent again with the next update; WATCHDOG=1 goes every few seconds).

A STATUS value carries reasons from outside (a Redis value, an exception's message): a newline
in it would start another assignment (`WATCHDOG=trigger`, `STOPPING=1`), so every STATUS is
made one safe line of at most STATUS_LINE_MAX_CHARS first.
"""

from __future__ import annotations

import logging
import os
import socket

from supervisor.text import STATUS_LINE_MAX_CHARS, safe_line

log = logging.getLogger(__name__)


class Notifier:
    def __init__(self, address: str | None = None) -> None:
        """`address`: the socket path ("@name" for the abstract namespace); by default
        $NOTIFY_SOCKET. Without one (not run by systemd) every call does nothing."""
        self.address = os.environ.get("NOTIFY_SOCKET", "") if address is None else address
        self.socket: socket.socket | None = None
        self._last_status = ""
        self._failing = False
        self._dropping = False
        self.dropped = 0  # notifications dropped because the socket's queue was full
        if self.address:
            self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self.socket.setblocking(False)

    @property
    def enabled(self) -> bool:
        return self.socket is not None

    def notify(self, state: str) -> bool:
        """Send one notification without ever waiting; True when it was sent."""
        if self.socket is None:
            return False
        target = "\0" + self.address[1:] if self.address.startswith("@") else self.address
        try:
            self.socket.sendto(state.encode("utf-8"), target)
        except BlockingIOError:
            self._dropped_one()
            return False
        except OSError as exc:
            if not self._failing:
                log.error(
                    "systemd notification to NOTIFY_SOCKET=%r failed: %s"
                    " (systemd sees no READY, STATUS or WATCHDOG from this process)",
                    self.address,
                    exc.strerror or exc,
                )
            self._failing = True
            return False
        self._failing = False
        self._dropping = False
        return True

    def _dropped_one(self) -> None:
        self.dropped += 1
        if not self._dropping:
            log.warning(
                "systemd is not reading NOTIFY_SOCKET=%r (its queue is full): notifications"
                " are dropped rather than wait (%d dropped so far)",
                self.address,
                self.dropped,
            )
        self._dropping = True

    def ready(self, status: str) -> None:
        line = status_value(status)
        self.notify(f"READY=1\nSTATUS={line}")
        self._last_status = line

    def status(self, status: str) -> None:
        """Send STATUS= only when the line changed."""
        line = status_value(status)
        if line != self._last_status and self.notify(f"STATUS={line}"):
            self._last_status = line

    def watchdog(self) -> None:
        self.notify("WATCHDOG=1")

    def stopping(self, status: str) -> None:
        self.notify(f"STOPPING=1\nSTATUS={status_value(status)}")

    def close(self) -> None:
        if self.socket is not None:
            self.socket.close()
            self.socket = None


def status_value(status: str) -> str:
    """What follows `STATUS=`: one line, nothing that sd_notify or a terminal interprets."""
    return safe_line(status, STATUS_LINE_MAX_CHARS)

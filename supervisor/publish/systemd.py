"""sd_notify: READY, WATCHDOG, STATUS, RELOADING, STOPPING over $NOTIFY_SOCKET.

Written here rather than with the sdnotify package, which encodes as latin-1 (a STATUS with
"—" never arrives), swallows every error (a NOTIFY_SOCKET pointing nowhere goes unnoticed)
and leaks its socket when NOTIFY_SOCKET is unset. This one sends UTF-8, says once that the
socket cannot be reached, and closes what it opened.

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
        if self.address:
            self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)

    @property
    def enabled(self) -> bool:
        return self.socket is not None

    def notify(self, state: str) -> None:
        if self.socket is None:
            return
        target = "\0" + self.address[1:] if self.address.startswith("@") else self.address
        try:
            self.socket.sendto(state.encode("utf-8"), target)
        except OSError as exc:
            if not self._failing:
                log.error(
                    "systemd notification to NOTIFY_SOCKET=%r failed: %s"
                    " (systemd sees no READY, STATUS or WATCHDOG from this process)",
                    self.address,
                    exc.strerror or exc,
                )
            self._failing = True
        else:
            self._failing = False

    def ready(self, status: str) -> None:
        line = status_value(status)
        self.notify(f"READY=1\nSTATUS={line}")
        self._last_status = line

    def status(self, status: str) -> None:
        """Send STATUS= only when the line changed."""
        line = status_value(status)
        if line != self._last_status:
            self.notify(f"STATUS={line}")
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

"""sd_notify: READY, WATCHDOG, STATUS, STOPPING.

The sdnotify package encodes messages as latin-1 and swallows every error, so a STATUS with
"—" never arrives and nobody knows. This subclass sends UTF-8 and logs a failed send once.
"""

from __future__ import annotations

import logging
import os

import sdnotify

log = logging.getLogger(__name__)


class Notifier(sdnotify.SystemdNotifier):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.enabled = bool(os.environ.get("NOTIFY_SOCKET")) and self.socket is not None
        self._last_status = ""
        self._failing = False

    def notify(self, state: str) -> None:
        if not self.enabled:
            return
        try:
            self.socket.sendall(state.encode("utf-8"))
            self._failing = False
        except OSError as exc:
            if not self._failing:
                log.warning("systemd notification failed: %s", exc)
            self._failing = True

    def ready(self, status: str) -> None:
        self.notify(f"READY=1\nSTATUS={status}")
        self._last_status = status

    def status(self, status: str) -> None:
        """Send STATUS= only when the line changed."""
        if status != self._last_status:
            self.notify(f"STATUS={status}")
            self._last_status = status

    def watchdog(self) -> None:
        self.notify("WATCHDOG=1")

    def stopping(self, status: str) -> None:
        self.notify(f"STOPPING=1\nSTATUS={status}")

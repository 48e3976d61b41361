"""An sd_notify socket that receives what the daemon tells systemd."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
import time

RECV_POLL_S = 0.05


class NotifySocket:
    """Receives sd_notify datagrams the way systemd does, and keeps them in order.

    A thread receives them as they arrive, so each is stamped with the time it was sent (within
    a few ms), also while the test sleeps: gaps between WATCHDOG=1 are measured, not guessed."""

    def __init__(self) -> None:
        # AF_UNIX paths are limited to 108 bytes: keep it short, not under pytest's tmp_path.
        self.directory = tempfile.mkdtemp(prefix="sdn")
        self.path = os.path.join(self.directory, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(RECV_POLL_S)
        self._messages: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    @property
    def messages(self) -> list[tuple[float, str]]:
        """(receive time, message) of everything received so far, in order."""
        with self._lock:
            return list(self._messages)

    def drain(self, quiet_s: float = 0.05, timeout_s: float = 2.0) -> None:
        """Wait until nothing new has arrived for `quiet_s`: what was sent before this call has
        been received (the receiving thread is a few ms behind)."""
        deadline = time.monotonic() + timeout_s
        count = -1
        while time.monotonic() < deadline and count != len(self.messages):
            count = len(self.messages)
            time.sleep(quiet_s)

    def _receive(self) -> None:
        while not self._closing.is_set():
            try:
                data = self.sock.recv(4096)
            except (TimeoutError, BlockingIOError):
                continue
            except OSError:  # closed
                return
            with self._lock:
                self._messages.append((time.time(), data.decode("utf-8")))

    def wait_for(
        self, needle: str, timeout_s: float = 10.0, after: float = 0.0
    ) -> tuple[float, str]:
        """The first message received after `after` containing `needle`."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for at, message in self.messages:
                if at >= after and needle in message:
                    return at, message
            time.sleep(0.02)
        raise TimeoutError(f"no sd_notify message containing {needle!r} within {timeout_s}s")

    def lines(self, prefix: str) -> list[tuple[float, str]]:
        return [
            (at, line)
            for at, m in self.messages
            for line in m.splitlines()
            if line.startswith(prefix)
        ]

    def close(self) -> None:
        self._closing.set()
        self._thread.join(timeout=2)
        self.sock.close()
        shutil.rmtree(self.directory, ignore_errors=True)

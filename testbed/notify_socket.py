"""An sd_notify socket that receives what the daemon tells systemd."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import time


class NotifySocket:
    """Receives sd_notify datagrams the way systemd does, and keeps them in order."""

    def __init__(self) -> None:
        # AF_UNIX paths are limited to 108 bytes: keep it short, not under pytest's tmp_path.
        self.directory = tempfile.mkdtemp(prefix="sdn")
        self.path = os.path.join(self.directory, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.1)
        self.messages: list[tuple[float, str]] = []

    def drain(self) -> None:
        while True:
            try:
                data = self.sock.recv(4096)
            except (TimeoutError, BlockingIOError):
                return
            self.messages.append((time.time(), data.decode("utf-8")))

    def wait_for(
        self, needle: str, timeout_s: float = 10.0, after: float = 0.0
    ) -> tuple[float, str]:
        """The first message received after `after` containing `needle`."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.drain()
            for at, message in self.messages:
                if at >= after and needle in message:
                    return at, message
        raise TimeoutError(f"no sd_notify message containing {needle!r} within {timeout_s}s")

    def lines(self, prefix: str) -> list[tuple[float, str]]:
        self.drain()
        return [
            (at, line)
            for at, m in self.messages
            for line in m.splitlines()
            if line.startswith(prefix)
        ]

    def close(self) -> None:
        self.sock.close()
        shutil.rmtree(self.directory, ignore_errors=True)

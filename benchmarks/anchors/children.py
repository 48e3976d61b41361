"""A server run as a child process of the benchmark: its output in a log file in the caller's
directory, stopped by its PID (SIGTERM, then SIGKILL), and waited for over HTTP."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path


class Child:
    def __init__(self, name: str, argv: Sequence[str], directory: Path) -> None:
        self.name = name
        self.log_path = directory / f"{name}.log"
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=directory,
            )

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(
                f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}"
            )

    def log_tail(self, lines: int = 20) -> str:
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM to this child's PID, SIGKILL if it is still there 10 s later."""
        if self.process.poll() is not None:
            return
        os.kill(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


@contextlib.contextmanager
def running(name: str, argv: Sequence[str], directory: Path) -> Iterator[Child]:
    child = Child(name, argv, directory)
    try:
        yield child
    finally:
        child.stop()


def wait_for_http(child: Child, url: str, timeout_s: float = 30.0) -> None:
    """Until `url` answers 200 (a server's readiness endpoint); fails early if it exited."""
    deadline = time.monotonic() + timeout_s
    while True:
        child.check_alive()
        if answers(url):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{child.name} not ready at {url}:\n{child.log_tail()}")
        time.sleep(0.1)


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return bool(answer.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def get_json(url: str) -> object:
    with urllib.request.urlopen(url, timeout=5) as answer:
        return json.loads(answer.read())

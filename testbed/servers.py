"""Real servers for tests and benchmarks: redis-server, an sd_notify socket, the daemon.

Everything binds to 127.0.0.1 on a free port, lives in a temporary directory, waits with a
bound, and is stopped by the PID we started.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
REPO_ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(0.02)


class RedisServer:
    """A private redis-server; stop() and start() again keep the same port (outage tests)."""

    def __init__(self, directory: Path) -> None:
        if not Path(REDIS_SERVER).exists():
            raise RuntimeError("redis-server is not installed: run scripts/test, which installs it")
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        argv = [
            REDIS_SERVER,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.directory),
        ]
        argv += ["--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning"]
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self._answers, 10, f"redis-server on port {self.port}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False


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


class Daemon:
    """`python -m supervisor run` as a real subprocess, its stderr captured to a file."""

    def __init__(
        self, config: Path, notify: NotifySocket | None, extra_env: dict[str, str] | None = None
    ) -> None:
        self.config = config
        self.log_path = config.with_suffix(".log")
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **(extra_env or {})}
        env.pop("JOURNAL_STREAM", None)
        if notify is not None:
            env["NOTIFY_SOCKET"] = notify.path
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "supervisor", "run", "--config", str(config)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=REPO_ROOT,
        )

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def terminate(self, timeout_s: float = 10.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=timeout_s)
        self._log.close()
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self._log.close()


def postgres_bin(name: str) -> str:
    """A PostgreSQL server binary (Debian keeps them out of PATH), newest version first."""
    candidates = sorted(
        Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), key=lambda p: int(p.parts[-3])
    )
    if not candidates:
        raise RuntimeError(
            "PostgreSQL server binaries not found: run scripts/test, which installs them"
        )
    return str(candidates[-1])


class PostgresServer:
    """A private PostgreSQL cluster on a free port. As root it runs as the `postgres` user
    (initdb refuses root), in a /tmp directory that user owns; trust auth on 127.0.0.1 only."""

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="pg"))
        self.data = self.directory / "data"
        self.port = free_port()
        self.user = "supervisor"
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres", "postgres")

    @property
    def dsn(self) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/postgres"

    def _run(self, *argv: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*prefix, *argv], check=True, capture_output=True, timeout=60)

    def init(self) -> None:
        self._run(
            postgres_bin("initdb"),
            "-D",
            str(self.data),
            "-U",
            self.user,
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        )

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.directory} -c fsync=off"
        log = str(self.directory / "server.log")
        self._run(
            postgres_bin("pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            log,
            "-w",
            "-t",
            "30",
            "start",
        )

    def stop(self) -> None:
        """Stops the postmaster of our own data directory (pg_ctl reads its PID file)."""
        if (self.data / "postmaster.pid").exists():
            self._run(postgres_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


@contextlib.contextmanager
def running_redis(directory: Path) -> Iterator[RedisServer]:
    """A started redis-server, stopped afterwards (also when starting it failed halfway)."""
    server = RedisServer(directory)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """A started private PostgreSQL, stopped and removed afterwards (also on a failed start)."""
    server = PostgresServer()
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.destroy()

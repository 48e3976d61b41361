"""A private PostgreSQL cluster on 127.0.0.1, on a free port, in a temporary directory."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from testbed.waiting import free_port


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
def running_postgres() -> Iterator[PostgresServer]:
    """A started private PostgreSQL, stopped and removed afterwards (also on a failed start)."""
    server = PostgresServer()
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.destroy()

"""A private PostgreSQL cluster on 127.0.0.1, on a free port, in a temporary directory.

Optionally with a password (scram-sha-256 on TCP) and TLS only (`hostssl`: a connection
without TLS is refused; `dsn` then asks for `sslmode=verify-full` against the test CA).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from testbed.waiting import free_port

if TYPE_CHECKING:  # trustme (a test dependency) is loaded only by callers that use TLS
    from testbed.certificates import Certificates


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
    (initdb refuses root), in a /tmp directory that user owns; on 127.0.0.1 only, trust auth
    unless a `password` is given."""

    def __init__(self, *, password: str | None = None, tls: Certificates | None = None) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="pg"))
        self.data = self.directory / "data"
        self.port = free_port()
        self.user = "supervisor"
        self.password = password
        self.tls = tls
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres", "postgres")

    @property
    def dsn(self) -> str:
        """The DSN the supervisor is given: the password in it, and over TLS the CA to verify
        the server against (libpq's `sslmode` and `sslrootcert`, which asyncpg reads)."""
        login = self.user if self.password is None else f"{self.user}:{self.password}"
        dsn = f"postgresql://{login}@127.0.0.1:{self.port}/postgres"
        if self.tls is not None:
            dsn += f"?sslmode=verify-full&sslrootcert={self.tls.ca_file}"
        return dsn

    def _write_owned(self, name: str, text: str, mode: int = 0o600) -> Path:
        """A file in our directory that the server (the `postgres` user, as root) can read."""
        path = self.directory / name
        path.write_text(text, encoding="utf-8")
        path.chmod(mode)
        if os.geteuid() == 0:
            shutil.chown(path, "postgres", "postgres")
        return path

    def _run(self, *argv: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*prefix, *argv], check=True, capture_output=True, timeout=60)

    def init(self) -> None:
        argv = [postgres_bin("initdb"), "-D", str(self.data), "-U", self.user, "--auth=trust"]
        if self.password is not None:
            argv.append(f"--pwfile={self._write_owned('pwfile', self.password)}")
        self._run(*argv, "-E", "UTF8", "--no-sync")
        self._write_hba()

    def _write_hba(self) -> None:
        """Local socket: trust (pg_ctl waits on it). TCP: TLS only when `tls` (hostssl), a
        password when `password` (scram-sha-256)."""
        connection = "host" if self.tls is None else "hostssl"
        method = "trust" if self.password is None else "scram-sha-256"
        hba = f"local all all trust\n{connection} all all 127.0.0.1/32 {method}\n"
        self._write_owned("data/pg_hba.conf", hba)

    def _tls_options(self) -> str:
        if self.tls is None:
            return ""
        cert = self._write_owned("server.crt", self.tls.cert_file.read_text(), 0o644)
        key = self._write_owned("server.key", self.tls.key_file.read_text())  # 0600: required
        return f" -c ssl=on -c ssl_cert_file={cert} -c ssl_key_file={key}"

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.directory} -c fsync=off"
        options += self._tls_options()
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
def running_postgres(
    *, password: str | None = None, tls: Certificates | None = None
) -> Iterator[PostgresServer]:
    """A started private PostgreSQL, stopped and removed afterwards (also on a failed start)."""
    server = PostgresServer(password=password, tls=tls)
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.destroy()

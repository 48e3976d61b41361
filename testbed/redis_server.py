"""A private redis-server on 127.0.0.1, on a free port, in a directory of the caller's.

Optionally with an ACL file (`aclfile`) and TLS only (`--port 0`: the plain port is closed).
The `default` user keeps full access in both modes: the tests use it as the administrator.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import ssl
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from testbed.waiting import free_port, wait_until

if TYPE_CHECKING:  # trustme (a test dependency) is loaded only by callers that use TLS
    from testbed.certificates import Certificates

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


class RedisServer:
    """A private redis-server; stop() and start() again keep the same port (outage tests)."""

    def __init__(
        self,
        directory: Path,
        *,
        acl_file: Path | None = None,
        tls: Certificates | None = None,
        client_certificates: bool = False,
        extra_args: Sequence[str] = (),
    ) -> None:
        if not Path(REDIS_SERVER).exists():
            raise RuntimeError("redis-server is not installed: run scripts/test, which installs it")
        self.directory = directory
        self.port = free_port()
        self.acl_file = acl_file
        self.tls = tls
        self.client_certificates = client_certificates  # TLS clients must present one
        self.extra_args = tuple(extra_args)  # more redis-server options ("--replicaof", ...)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The administrator's URL; over TLS it names the CA to trust (redis-py's
        `ssl_ca_certs` query parameter, as the supervisor's own config does)."""
        if self.tls is None:
            return f"redis://127.0.0.1:{self.port}/0"
        url = f"rediss://127.0.0.1:{self.port}/0?ssl_ca_certs={self.tls.ca_file}"
        if self.client_certificates:
            url += f"&ssl_certfile={self.tls.client_cert_file}"
            url += f"&ssl_keyfile={self.tls.client_key_file}"
        return url

    def start(self) -> None:
        argv = [REDIS_SERVER, *self._listen_args(), "--bind", "127.0.0.1"]
        argv += ["--dir", str(self.directory)]
        argv += ["--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning"]
        if self.acl_file is not None:
            argv += ["--aclfile", str(self.acl_file)]
        argv += self.extra_args
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self._answers, 10, f"redis-server on port {self.port}")

    def _listen_args(self) -> list[str]:
        if self.tls is None:
            return ["--port", str(self.port)]
        return [
            "--port",
            "0",  # no plain port at all: TLS only
            "--tls-port",
            str(self.port),
            "--tls-cert-file",
            str(self.tls.cert_file),
            "--tls-key-file",
            str(self.tls.key_file),
            "--tls-ca-cert-file",
            str(self.tls.ca_file),
            "--tls-auth-clients",
            "yes" if self.client_certificates else "no",
        ]

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.send_signal(signal.SIGCONT)  # a frozen server must see the SIGTERM
            self.process.wait(timeout=10)
            self.process = None

    def kill(self) -> None:
        """SIGKILL: no shutdown, no save; start() brings up an empty server on the same port."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def freeze(self) -> None:
        """SIGSTOP: the port still accepts TCP connections (the kernel's backlog), but nothing
        answers until thaw()."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)

    def _answers(self) -> bool:
        try:
            with self._connect() as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def _connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=0.5)
        if self.tls is None:
            return sock
        context = ssl.create_default_context(cafile=str(self.tls.ca_file))
        context.load_cert_chain(self.tls.client_cert_file, self.tls.client_key_file)
        try:
            return context.wrap_socket(sock, server_hostname="127.0.0.1")
        except OSError:
            sock.close()  # a failed handshake must not leave the socket to the collector
            raise


@contextlib.contextmanager
def running_redis(
    directory: Path,
    *,
    acl_file: Path | None = None,
    tls: Certificates | None = None,
    client_certificates: bool = False,
) -> Iterator[RedisServer]:
    """A started redis-server, stopped afterwards (also when starting it failed halfway)."""
    server = RedisServer(
        directory, acl_file=acl_file, tls=tls, client_certificates=client_certificates
    )
    try:
        server.start()
        yield server
    finally:
        server.stop()

"""A hostile HTTP server on 127.0.0.1 for tests: answers too large, or too slow to finish.

Raw sockets, one thread per connection, so that it can do what a well-behaved server (and
http.server) will not: drip the status line and headers a byte at a time ("slow loris"),
drip the body a byte at a time after honest headers, or stream a body of many megabytes,
with or without a Content-Length. Every request, whatever its method and path, gets the
server's one behaviour. Every loop is bounded (a number of bytes, and `close()`), so a test
that fails because the client does not give up still ends by itself.

`sent` counts the bytes each connection managed to write before the client went away: a
client that gives up after 1 MiB of a 64 MiB body leaves it far below 64 MiB.
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass
from typing import Literal

Mode = Literal["huge", "drip_body", "drip_headers"]
CHUNK = 64 * 1024
REQUEST_LIMIT = 64 * 1024


@dataclass(frozen=True)
class Behaviour:
    mode: Mode
    size: int = 64 * 1024 * 1024  # the body's length ("huge"), or bytes dripped ("drip_*")
    declare_length: bool = True  # "huge": send Content-Length, else close-delimited
    interval_s: float = 0.3  # "drip_*": the pause between two bytes


class HostileHttpServer:
    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.sent: list[int] = []  # bytes written, per finished connection
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.port: int = self._listener.getsockname()[1]
        self._acceptor = threading.Thread(target=self._accept_loop, daemon=True)
        self._acceptor.start()

    def __enter__(self) -> HostileHttpServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self._stopping.set()  # every loop checks it between two writes
        self._acceptor.join(timeout=5)
        self._listener.close()
        for thread in list(self._threads):
            thread.join(timeout=5)

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                connection, _address = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(connection,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, connection: socket.socket) -> None:
        sent = 0
        with connection:
            connection.settimeout(5)
            try:
                _read_request(connection)
                for piece in self._pieces():
                    if self._stopping.is_set():
                        break
                    connection.sendall(piece)
                    sent += len(piece)
                    if self.behaviour.mode != "huge":
                        self._stopping.wait(self.behaviour.interval_s)
            except OSError:  # the client gave up (reset, broken pipe) or timed out
                pass
        with self._lock:
            self.sent.append(sent)

    def _pieces(self) -> list[bytes]:
        """What to write, in the writes it is written in."""
        b = self.behaviour
        if b.mode == "drip_headers":
            head = _head(200, b.size)[: b.size]  # a status line and headers never finished
            return [head[i : i + 1] for i in range(len(head))]
        if b.mode == "drip_body":
            return [_head(200, b.size), *([b"1"] * b.size)]
        head = _head(200, b.size if b.declare_length else None)
        full, rest = divmod(b.size, CHUNK)
        return [head, *([b"0" * CHUNK] * full), b"0" * rest]


def _head(status: int, length: int | None) -> bytes:
    lines = [f"HTTP/1.1 {status} OK", "Content-Type: application/json"]
    lines += [f"Content-Length: {length}"] if length is not None else ["Connection: close"]
    lines += [f"X-Padding-{i}: {'p' * 40}" for i in range(40)]  # room for a long drip
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _read_request(connection: socket.socket) -> None:
    """Read the request head and any Content-Length body, within REQUEST_LIMIT."""
    data = b""
    while b"\r\n\r\n" not in data and len(data) < REQUEST_LIMIT:
        chunk = connection.recv(4096)
        if not chunk:
            return
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length" and value.strip().isdigit():
            missing = min(int(value), REQUEST_LIMIT) - len(body)
            while missing > 0:
                chunk = connection.recv(min(missing, 4096))
                if not chunk:
                    return
                missing -= len(chunk)

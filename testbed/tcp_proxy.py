"""A TCP proxy on 127.0.0.1 that can turn into a black hole, for network-fault tests.

Forwarding, it relays bytes both ways between each client and `upstream_port`. Switched to
`blackhole()`, it keeps accepting connections and reading what clients send, but never
answers and never passes anything on: a peer that is "up" at the TCP level and silent at
the application level (a hung host, a firewall dropping replies). `forward()` switches back;
connections that fell into the hole are closed then (their request/reply stream is lost),
so clients reconnect. One thread, `select` with a short timeout, every socket closed by
`close()`.
"""

from __future__ import annotations

import select
import socket
import threading
from dataclasses import dataclass, field

POLL_S = 0.05
CHUNK = 65536


@dataclass
class Link:
    """One client connection and, while forwarding, its upstream connection."""

    client: socket.socket
    upstream: socket.socket | None
    swallowed: bool = False  # it has been in the black hole: never forwarded again

    def sockets(self) -> list[socket.socket]:
        return [self.client] if self.upstream is None else [self.client, self.upstream]

    def close(self) -> None:
        for sock in self.sockets():
            sock.close()


@dataclass
class Counts:
    accepted: int = 0
    swallowed_bytes: int = 0
    links: list[Link] = field(default_factory=list)


class TcpProxy:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.setblocking(False)
        self.port: int = self._listener.getsockname()[1]
        self._holing = False
        self._counts = Counts()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def url(self, database: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{database}"

    def blackhole(self) -> None:
        """From now on nothing is answered or passed on, on old and new connections alike."""
        with self._lock:
            self._holing = True

    def forward(self) -> None:
        """Relay again; connections that fell into the hole are closed."""
        with self._lock:
            self._holing = False
            swallowed = [link for link in self._counts.links if link.swallowed]
            for link in swallowed:
                link.close()
                self._counts.links.remove(link)

    @property
    def accepted(self) -> int:
        with self._lock:
            return self._counts.accepted

    @property
    def swallowed_bytes(self) -> int:
        with self._lock:
            return self._counts.swallowed_bytes

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        with self._lock:
            for link in self._counts.links:
                link.close()
            self._counts.links.clear()
        self._listener.close()

    # --- the serving thread ------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                watched = [self._listener] + [s for ln in self._counts.links for s in ln.sockets()]
            try:
                readable, _, _ = select.select(watched, [], [], POLL_S)
            except (OSError, ValueError):  # a socket closed by forward() meanwhile
                continue
            for sock in readable:
                if sock is self._listener:
                    self._accept()
                else:
                    self._relay(sock)

    def _accept(self) -> None:
        try:
            client, _ = self._listener.accept()
        except BlockingIOError:
            return
        with self._lock:
            self._counts.accepted += 1
            holing = self._holing
        upstream = None
        if not holing:
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=1)
            except OSError:
                client.close()  # upstream down: refuse as the real server would
                return
        with self._lock:
            self._counts.links.append(Link(client, upstream, swallowed=holing))

    def _relay(self, sock: socket.socket) -> None:
        with self._lock:
            link = next((ln for ln in self._counts.links if sock in ln.sockets()), None)
            holing = self._holing
        if link is None:
            return
        try:
            data = sock.recv(CHUNK)
        except OSError:
            data = b""
        if not data:
            self._drop(link)
            return
        if holing or link.swallowed:
            with self._lock:
                link.swallowed = True
                self._counts.swallowed_bytes += len(data)
            return
        peer = link.upstream if sock is link.client else link.client
        try:
            assert peer is not None
            peer.sendall(data)
        except OSError:
            self._drop(link)

    def _drop(self, link: Link) -> None:
        link.close()
        with self._lock:
            if link in self._counts.links:
                self._counts.links.remove(link)

"""Fresh ticks for many instruments (up to 100,000 and more), written by a thread, for
benchmarks: a healthy feed that costs its host almost nothing, so that what is measured is
the supervisor.

Every round writes one epoch-ms timestamp to every key, in `MSET`s of 1,000 keys (each as
short for Redis as the supervisor's `MGET`s). The commands are packed once around the
timestamp's place, so a round is one `bytes.join` and one write. `drop` stops feeding an
instrument (a fault) and says when its last tick was; `restore` feeds it again.
"""

from __future__ import annotations

import socket
import threading
import time
from urllib.parse import urlsplit

BATCH = 1000
TS_DIGITS = 13  # epoch ms has 13 digits until the year 2286


class BulkFeed:
    def __init__(self, redis_url: str, keys: list[str], period_s: float = 1.0) -> None:
        address = urlsplit(redis_url)
        self.address = (address.hostname or "127.0.0.1", address.port or 6379)
        self.period_s = period_s
        self.keys = list(keys)
        self.last_tick_at = 0.0  # epoch seconds of the last complete round
        self.rounds = 0
        self._lock = threading.Lock()
        self._segments = _segments(self.keys)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._sock = socket.create_connection(self.address)

    def start(self) -> BulkFeed:
        self.write()
        self._thread.start()
        return self

    def write(self) -> None:
        """One round: every key gets the current time, in epoch ms."""
        with self._lock:
            ms = int(time.time() * 1000)
            stamp = str(ms).encode()
            assert len(stamp) == TS_DIGITS
            for batch in self._segments:
                self._sock.sendall(stamp.join(batch))
            expected = len(self._segments) * len(b"+OK\r\n")
            received = b""
            while len(received) < expected:
                chunk = self._sock.recv(65536)
                if not chunk:
                    raise ConnectionError("redis closed the feed's connection")
                received += chunk
            if received != b"+OK\r\n" * len(self._segments):
                raise RuntimeError(f"MSET failed: {received[:200]!r}")
            self.last_tick_at = ms / 1000
            self.rounds += 1

    def drop(self, key: str) -> float:
        """Stop feeding `key`; return its last tick (epoch seconds, as written)."""
        with self._lock:
            self.keys.remove(key)
            self._segments = _segments(self.keys)
            return self.last_tick_at

    def restore(self, key: str) -> None:
        """Feed `key` again, starting with a round now."""
        with self._lock:
            self.keys.append(key)
            self._segments = _segments(self.keys)
        self.write()

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            self.write()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self._sock.close()


def _segments(keys: list[str]) -> list[list[bytes]]:
    """Per MSET of up to BATCH keys, the pieces between the timestamps: joined with one
    timestamp, they are the whole command in the Redis protocol."""
    batches = []
    for start in range(0, len(keys), BATCH):
        chunk = [key.encode() for key in keys[start : start + BATCH]]
        head = b"*%d\r\n$4\r\nMSET\r\n" % (2 * len(chunk) + 1)
        pieces, pending = [], head
        for key in chunk:
            pieces.append(pending + b"$%d\r\n%b\r\n$%d\r\n" % (len(key), key, TS_DIGITS))
            pending = b"\r\n"
        pieces.append(pending)
        batches.append(pieces)
    return batches

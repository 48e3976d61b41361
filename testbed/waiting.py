"""Free local ports, and waiting for a condition with a bound."""

from __future__ import annotations

import os
import random
import re
import socket
import threading
import time
from collections.abc import Callable

# free_port() hands out ports from here: below Linux's ephemeral range (32768-60999), so that
# the kernel never gives one to an outgoing connection or a bind to port 0 between the moment
# it is handed out and the moment a server binds it; and split between pytest-xdist's workers
# (the suite runs on two), so that two workers never hand out the same one.
PORT_POOL = range(20000, 32000)

_cursor: int | None = None
_cursor_lock = threading.Lock()


def port_slice() -> range:
    """This process's share of PORT_POOL: the whole pool outside pytest-xdist; a worker's
    subprocesses (the demo, the simulator) inherit its share from the environment."""
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 1)
    match = re.fullmatch(r"gw(\d+)", os.environ.get("PYTEST_XDIST_WORKER", ""))
    index = int(match.group(1)) if match else 0
    size = len(PORT_POOL) // max(count, 1)
    start = PORT_POOL.start + (index % max(count, 1)) * size
    return range(start, start + size)


def free_port() -> int:
    """A port nothing listens on: each call a different one, taken in turn from this
    process's share of PORT_POOL from a random start, skipping any port that cannot be bound
    (in use, or in TIME_WAIT)."""
    global _cursor
    ports = port_slice()
    with _cursor_lock:
        if _cursor is None:
            _cursor = random.randrange(len(ports))
        for _ in range(len(ports)):
            port = ports[_cursor % len(ports)]
            _cursor += 1
            with socket.socket() as sock:
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise OSError(f"no free port in {ports.start}-{ports.stop - 1}")


def wait_until(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(0.02)

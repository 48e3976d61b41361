"""A state file rewritten whole (temporary file, fsync, atomic rename) by a worker thread, so
that a busy disk never holds the event loop.

The latches (engaged.json) and the pending orders (pending.json) change on the action path: an
order is written before its actuator is called, a latch once the venue confirmed. An fsync
there took 2 s on a loaded machine (another process flushing the same disk): the whole loop
waited, the systemd keepalive and the watchdogs with it, and with [ha] on, the lease renewal.

The loop hands over the file's new content and goes on. Writes run one at a time, in the
order handed over; contents handed over while one is on its way are coalesced, since each is
the whole file: only the newest is written next. `written(n)` waits, within a budget, for the
n-th content handed over (or a newer one) to be on disk; `flush()` for all of them (the
shutdown's last step). A failed write is told to `failed` in the loop and written again with
the next content handed over.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

FILE_MODE = 0o600


def write_atomically(path: Path, content: bytes) -> None:
    """Replace `path` by `content`: a reader (or a power cut) sees the old file or the new
    one, never a part. Raises OSError (disk full, read-only state_dir)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        view = memoryview(content)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself survives a power cut
    finally:
        os.close(directory)


class SnapshotFile:
    def __init__(self, path: Path, failed: Callable[[Path, OSError], None]) -> None:
        self.path = path
        self._failed = failed
        self._newest: bytes | None = None  # handed over, not yet on its way to the disk
        self._handed = 0  # how many contents were handed over
        self._settled = 0  # the number of the newest one written (or failed)
        self._writer: asyncio.Task[None] | None = None
        self._settling = asyncio.Condition()

    def put(self, content: bytes) -> int:
        """Hand over the file's new content; return its number, for `written`."""
        self._newest = content
        self._handed += 1
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write_all())
        return self._handed

    async def written(self, number: int, budget_s: float) -> bool:
        """Wait up to `budget_s` for content `number` (or a newer one) to be written or to
        fail; True when it was settled in time."""
        if self._settled >= number:
            return True
        try:
            async with asyncio.timeout(max(budget_s, 0.0)):
                async with self._settling:
                    await self._settling.wait_for(lambda: self._settled >= number)
        except TimeoutError:
            return False
        return True

    async def flush(self) -> None:
        """Wait until every content handed over is written (or failed)."""
        while self._writer is not None and not self._writer.done():
            await asyncio.wait({self._writer})

    async def _write_all(self) -> None:
        loop = asyncio.get_running_loop()
        while self._newest is not None:
            content, number = self._newest, self._handed
            self._newest = None
            try:
                # Shielded: a cancelled writer still lets the thread finish its rename.
                await asyncio.shield(
                    loop.run_in_executor(None, write_atomically, self.path, content)
                )
            except OSError as exc:
                self._failed(self.path, exc)
            async with self._settling:
                self._settled = number
                self._settling.notify_all()

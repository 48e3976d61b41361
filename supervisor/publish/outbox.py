"""The audit outbox: an append-only, fsync'd JSON Lines file of events Postgres has not taken.

One event per line, in the order they happened. Bytes only: what a line means is the audit
trail's business (supervisor/publish/audit/).

- `append` writes one line with a single write() and fsyncs it (and the directory when it
  creates the file). If the file ends in a torn line (a crash mid-write), a newline is written
  first, so the torn line stays one bad line and never swallows the next event.
- `read_head` returns the first lines and the byte offset after them; the caller inserts them
  and then `drop_head` removes exactly those bytes: everything after the offset (including lines
  appended meanwhile) is copied to a temporary file, fsynced and `os.replace`d over the outbox.
  A crash at any point leaves either the old file (its head is replayed again, which the events'
  ids make harmless) or the new one: nothing is lost.
- An exclusive flock on a side lock file serializes appends, reads and rewrites between
  processes (a CLI recording a manual action while the daemon replays).
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

STATE_DIR_MODE = 0o700
FILE_MODE = 0o600


@dataclass(frozen=True)
class Head:
    """The first lines of the outbox as read: non-blank lines and where they end."""

    lines: list[bytes]
    ends: list[int]  # byte offset just after each line
    inode: int  # drop_head only rewrites the file it was read from


@dataclass(frozen=True)
class Written:
    """A line written and not yet synced: its file descriptor (open until `sync`)."""

    fd: int
    new: bool  # the file was empty or new: its directory entry needs an fsync too


class Outbox:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock_path = path.with_name(path.name + ".lock")
        self._cache: tuple[tuple[int, int, int], int] | None = None  # (ino, size, mtime), lines

    def append(self, line: bytes) -> None:
        """Append one line (no newline in it) durably. Raises OSError (disk full...)."""
        self.sync(self.write(line))

    def write(self, line: bytes) -> Written:
        """The first half of `append`: the line is in the file (and survives this process),
        not yet on disk. `sync` must follow, also when it runs in another thread: the write
        stays in order with every other write and replay, and only the wait for the disk
        leaves the caller's thread."""
        if b"\n" in line:
            raise ValueError("an outbox line must not contain a newline")
        with self._locked():
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, FILE_MODE)
            try:
                before = os.fstat(fd)
                prefix = b"" if _ends_clean(fd, before.st_size) else b"\n"
                _write_all(fd, prefix + line + b"\n")
                after = os.fstat(fd)
            except BaseException:
                os.close(fd)
                raise
        self._count_appended(before, after)
        return Written(fd, new=before.st_size == 0)

    def sync(self, written: Written) -> None:
        """The second half of `append`: on disk (and the file's entry, if it was new)."""
        try:
            os.fsync(written.fd)
        finally:
            os.close(written.fd)
        if written.new:
            _fsync_dir(self.path.parent)

    def is_empty(self) -> bool:
        """One stat(): cheap enough for every event and every housekeeping cycle."""
        try:
            return self.path.stat().st_size == 0
        except FileNotFoundError:
            return True

    def size(self) -> int:
        """Lines waiting (a torn last line counts). Recounted only when the file changed."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return 0
        key = _key(stat)
        if self._cache is None or self._cache[0] != key:
            self._cache = (key, _count_lines(self.path.read_bytes()))
        return self._cache[1]

    def read_head(self, max_lines: int) -> Head:
        """Up to `max_lines` non-blank lines from the start (blank lines are skipped)."""
        lines: list[bytes] = []
        ends: list[int] = []
        end = 0
        with self._locked(), _open_or_none(self.path) as file:
            if file is None:
                return Head([], [], 0)
            inode = os.fstat(file.fileno()).st_ino
            for raw in file:
                if len(lines) >= max_lines:
                    break
                end += len(raw)
                if raw.strip():
                    lines.append(raw.rstrip(b"\r\n"))
                    ends.append(end)
        return Head(lines, ends, inode)

    def drop_head(self, head: Head, count: int | None = None) -> int:
        """Remove the first `count` lines of `head` (default: all of them) and nothing else,
        keeping lines appended since; return the lines left."""
        count = len(head.lines) if count is None else count
        if count == 0:
            return self.size()
        with self._locked(), _open_or_none(self.path) as file:
            if file is None or os.fstat(file.fileno()).st_ino != head.inode:
                return self.size()  # rewritten elsewhere meanwhile: replay it again later
            file.seek(head.ends[count - 1])
            rest = file.read()
            if rest.strip():
                self._replace_with(rest)
            else:
                self.path.unlink()
                _fsync_dir(self.path.parent)
        return self.size()

    def read_all(self) -> list[bytes]:
        """Every non-blank line, for readers (no lock: a reader may see a line being written)."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        return [line for line in data.split(b"\n") if line.strip()]

    def _replace_with(self, rest: bytes) -> None:
        temporary = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
        try:
            _write_all(fd, rest)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, self.path)
        _fsync_dir(self.path.parent)
        self._cache = (_key(self.path.stat()), _count_lines(rest))

    def _count_appended(self, before: os.stat_result, after: os.stat_result) -> None:
        if self._cache is not None and self._cache[0] == _key(before):
            self._cache = (_key(after), self._cache[1] + 1)
        else:
            self._cache = None

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        ensure_private_dir(self.path.parent)
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock


def append_durably(path: Path, lines: list[bytes]) -> None:
    """Append whole lines to a plain append-only file and fsync it (the rejected-lines file)."""
    ensure_private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
    try:
        _write_all(fd, b"".join(line + b"\n" for line in lines))
        os.fsync(fd)
    finally:
        os.close(fd)


def ensure_private_dir(directory: Path) -> None:
    """Create the state directory (mode 0700) if it is missing; leave an existing one alone."""
    if not directory.is_dir():
        directory.mkdir(mode=STATE_DIR_MODE, parents=True, exist_ok=True)


@contextlib.contextmanager
def _open_or_none(path: Path) -> Iterator[io.BufferedReader | None]:
    try:
        file = path.open("rb")
    except FileNotFoundError:
        yield None
        return
    with file:
        yield file


def _ends_clean(fd: int, size: int) -> bool:
    return size == 0 or os.pread(fd, 1, size - 1) == b"\n"


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _key(stat: os.stat_result) -> tuple[int, int, int]:
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns)


def _count_lines(data: bytes) -> int:
    return sum(1 for line in data.split(b"\n") if line.strip())

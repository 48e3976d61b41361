"""One daemon per state_dir: two would overwrite each other's latches, pending actions and
audit outbox. `run` takes an exclusive flock on `state_dir/.lock` and holds it for the life
of the process; the kernel releases it when the process ends, however it ends (a SIGKILL
too), so a restart never finds a stale lock. The file holds the holder's PID, for the
message a second daemon gets.
"""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path

from supervisor.errors import SupervisorError
from supervisor.text import safe_line

log = logging.getLogger("supervisor")

LOCK_FILE = ".lock"
PID_MAX_BYTES = 32


class StateDirInUse(SupervisorError):
    """Another process holds the state_dir lock."""


def lock_state_dir(state_dir: Path) -> int | None:
    """The descriptor that holds the lock (keep it open); StateDirInUse when another process
    holds it; None when the lock cannot be taken at all (state_dir unwritable: the daemon
    runs and says so, as it does for every write to state_dir)."""
    path = state_dir / LOCK_FILE
    try:
        state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        log.error("state_dir: cannot open %s to lock it: %s", path, exc.strerror or exc)
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(fd)
        os.close(fd)
        raise StateDirInUse(
            f"state_dir {safe_line(str(state_dir), 200)} is in use by another"
            f" trading-supervisor ({holder}): two on one state_dir would overwrite each"
            " other's latches and audit outbox. Give each its own [supervisor] state_dir."
        ) from None
    except OSError as exc:
        log.error("state_dir: cannot lock %s: %s", path, exc.strerror or exc)
        os.close(fd)
        return None
    _write_pid(fd)
    return fd


def _holder(fd: int) -> str:
    try:
        raw = os.pread(fd, PID_MAX_BYTES, 0).decode("ascii").strip()
    except (OSError, UnicodeDecodeError):
        return "PID unknown"
    return f"PID {raw}" if raw.isdigit() else "PID unknown"


def _write_pid(fd: int) -> None:
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
    except OSError as exc:  # the lock holds all the same; only the message loses the PID
        log.warning("state_dir: cannot write the PID into %s: %s", LOCK_FILE, exc.strerror)

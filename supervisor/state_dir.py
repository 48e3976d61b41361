"""Is state_dir writable? Latches and the audit outbox live there; finding out at the first
trip would be too late, so the daemon asks at start and on every housekeeping pass."""

from __future__ import annotations

import os
from pathlib import Path

PROBE_FILE = ".write-check"
PROBE_BYTES = b"write check\n" * 256  # 3 KiB: a full disk refuses it, an empty file would pass


def unwritable(state_dir: Path) -> str | None:
    """None when a file can be written, synced and removed in `state_dir`; else why not."""
    probe = state_dir / PROBE_FILE
    try:
        state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        with probe.open("wb") as handle:
            handle.write(PROBE_BYTES)
            handle.flush()
            os.fsync(handle.fileno())
        probe.unlink()
    except OSError as exc:
        return f"cannot write {state_dir}: {exc.strerror or exc}"
    return None

"""The highest fencing token this instance has seen, kept in `state_dir/fencing-token.json`
so that it survives a restart: a claim sends it, and the script moves the counter past it,
so a token never goes backward even when Redis lost the counter *and* this process was
restarted meanwhile (docs/operations.md, "High availability").

Seen means issued to this instance, or read in Redis (the leader's token, the counter) while
another instance led. The file is rewritten (temp file, fsync, atomic rename, fsync of the
directory) only when the number grows, which is at a change of leader. Read back it is
outside input: an unreadable file is said, counted and set aside, and a missing or
unreadable one means "known: 0" with a warning, never a crash.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from supervisor import stored
from supervisor.snapshot_file import write_atomically

log = logging.getLogger("supervisor")

MEMORY_FILE = "fencing-token.json"
FIELD = "highest_token"
THEN = "the highest fencing token this instance knows is only what Redis holds"


def parse(raw: bytes) -> int:
    """The highest token in the file's bytes; Unreadable for anything this version never wrote."""
    value = stored.optional_counter(stored.mapping(stored.decode_json(raw)), FIELD)
    if value is None:
        raise stored.Unreadable(f"{FIELD} is missing")
    return value


class TokenMemory:
    """The highest fencing token seen: in memory, and on disk once it grows."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / MEMORY_FILE
        self.highest = 0
        self.written = 0  # the number on disk, as far as this process knows

    def load(self) -> int:
        """Read what an earlier run kept (never raises): 0 when nothing readable is there."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            log.warning("lease: no %s in state_dir (a first start?): %s", MEMORY_FILE, THEN)
            return self.highest
        except OSError as exc:
            log.warning("lease: cannot read %s (%s): %s", self.path, exc.strerror or exc, THEN)
            return self.highest
        try:
            known = parse(raw)
        except stored.Unreadable as exc:
            stored.unreadable_file(self.path, MEMORY_FILE, raw, str(exc), THEN)
            log.warning("lease: %s is unreadable: %s", MEMORY_FILE, THEN)
            return self.highest
        self.highest = self.written = max(self.highest, known)
        log.info("lease: the highest fencing token seen before this start is %d", known)
        return self.highest

    def see(self, token: int | None) -> bool:
        """Note a token seen; True when it is above every token seen before."""
        if token is None or token <= self.highest:
            return False
        self.highest = token
        return True

    def unsaved(self) -> bool:
        return self.highest > self.written

    def save(self) -> None:
        """Write the highest token seen (a blocking write: call it off the event loop).
        Raises OSError; the next token seen tries again."""
        known = self.highest
        write_atomically(self.path, json.dumps({FIELD: known}).encode())
        self.written = max(self.written, known)

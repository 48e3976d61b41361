"""Reading back what the daemon stored: outside input like any other (docs/operations.md,
"Unreadable entries").

Its own Redis keys and its state files can hold anything by the time they are read: a value
written by hand or by another version, bytes that are not UTF-8, JSON of any shape and depth,
numbers that overflow a float. Every reader decodes through this module, which turns all of
that into one exception, `Unreadable`, so that a reader catches one thing and a bug (any
other exception) still shows its traceback.

`Sightings` says each unreadable entry once (not on every pass that meets it again) and
counts them per store for `supervisor_unreadable_entries_total{store}`.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from supervisor.text import safe_line

log = logging.getLogger("supervisor")

MAX_DEPTH = 16  # what the daemon writes is 3 levels deep; an audit event's detail a few more
MAX_STORED_BYTES = 8 * 1024 * 1024  # a state file or a value this large was not written by us
MAX_COUNTER = 2**63 - 1  # what Redis INCR can hold
SET_ASIDE_TTL_S = 7 * 24 * 3600  # a key set aside stays this long for an operator to look at
MAX_REMEMBERED = 10_000  # entries whose sighting is remembered (said once); then start again

# The `store` label of supervisor_unreadable_entries_total: a key's first part after the
# namespace (stored_redis.store_of), or a state file's name.
STORES = (
    "engaged",
    "reset",
    "seq",
    "order",
    "leader",
    "identity",
    "instance",
    "instances",
    "state",
    "watchdog",
    "heartbeat",
    "events",
    "engaged.json",
    "pending-actions.json",
    "fencing-token.json",
    "audit-outbox",
)

# What decoding and converting a stored value may raise: each means "not what we write".
DECODE_ERRORS = (
    ValueError,  # bad JSON, bad UTF-8 (UnicodeDecodeError), an int of more than 4,300 digits
    TypeError,
    KeyError,
    IndexError,
    OverflowError,  # float() of an integer of 400 digits
    RecursionError,  # JSON nested 100,000 deep
)


class Unreadable(ValueError):
    """A stored entry that is not what this version writes; the message says why."""


def _no_constant(name: str) -> float:
    raise Unreadable(f"{name} is not a number")


def decode_json(raw: bytes | str, *, max_bytes: int = MAX_STORED_BYTES) -> Any:
    """The JSON value in `raw`, at most MAX_DEPTH deep; Unreadable for anything else."""
    if len(raw) > max_bytes:
        raise Unreadable(f"{len(raw)} bytes, more than {max_bytes}")
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        value = json.loads(text, parse_constant=_no_constant)
    except Unreadable:
        raise
    except DECODE_ERRORS as exc:
        raise Unreadable(f"not JSON: {type(exc).__name__}: {_short(exc)}") from None
    if _deeper_than(value, MAX_DEPTH):
        raise Unreadable(f"nested more than {MAX_DEPTH} deep")
    return value


def _deeper_than(value: Any, limit: int) -> bool:
    """Without recursion: a value nested deeper than `limit` must not reach code that recurses."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth >= limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def mapping(value: Any, what: str = "entry") -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise Unreadable(f"{what} is not a JSON object")
    return value


def text(data: Mapping[str, Any], name: str, default: str | None = None) -> str:
    value = data.get(name, default)
    if not isinstance(value, str):
        raise Unreadable(f"{name} is not a string" if name in data else f"{name} is missing")
    return value


def number(data: Mapping[str, Any], name: str) -> float:
    """A finite float from an int or a float (never a bool, never a string)."""
    value = data.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Unreadable(f"{name} is not a number" if name in data else f"{name} is missing")
    try:
        result = float(value)
    except OverflowError:
        raise Unreadable(f"{name} is too large for a float") from None
    if not math.isfinite(result):
        raise Unreadable(f"{name} is not finite")
    return result


def optional_counter(data: Mapping[str, Any], name: str) -> int | None:
    """None, or an integer a Redis counter can hold (0 .. 2**63-1)."""
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise Unreadable(f"{name} is not an integer")
    if not 0 <= value <= MAX_COUNTER:
        raise Unreadable(f"{name} is out of range")
    return value


def counter_text(raw: bytes | str | None) -> int | None:
    """A counter as Redis holds it (INCR's decimal text), or None for anything else."""
    if raw is None:
        return None
    shown = raw.decode("ascii", "replace") if isinstance(raw, bytes) else raw
    if not (shown.isascii() and shown.isdigit() and len(shown) <= 19):
        return None
    value = int(shown)
    return value if value <= MAX_COUNTER else None


def key_text(raw: bytes | str) -> str:
    """A hash field or member name; Unreadable if it is not UTF-8."""
    if isinstance(raw, str):
        return raw
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Unreadable("the name is not UTF-8") from None


def _short(exc: BaseException) -> str:
    return safe_line(str(exc), 80)


class Sightings:
    """Which unreadable entries were said already, and how many per store."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # the metrics exporter reads counts from its thread
        self._seen: dict[tuple[str, str], int] = {}  # (store, entry) -> fingerprint of the raw
        self._counts: dict[str, int] = {}

    def report(self, store: str, entry: str, raw: bytes | str | None, why: str, then: str) -> bool:
        """Log and count an unreadable entry, once per entry and content; True if news."""
        fingerprint = _fingerprint(raw)
        with self._lock:
            if self._seen.get((store, entry)) == fingerprint:
                return False
            if len(self._seen) >= MAX_REMEMBERED:
                self._seen.clear()
            self._seen[(store, entry)] = fingerprint
            self._counts[store] = self._counts.get(store, 0) + 1
        log.error(
            "unreadable %s entry %s (%s): %s",
            store,
            safe_line(entry, 120),
            safe_line(why, 160),
            then,
        )
        return True

    def count(self, store: str, entries: int = 1) -> None:
        """Count entries said and set aside elsewhere (the audit outbox's rejected lines)."""
        with self._lock:
            self._counts[store] = self._counts.get(store, 0) + entries

    def forget(self) -> None:
        """Forget every sighting and count (for tests: one process runs many daemons)."""
        with self._lock:
            self._seen.clear()
            self._counts.clear()

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)


def _fingerprint(raw: bytes | str | None) -> int:
    if raw is None:
        return -1
    data = raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else raw
    return zlib.crc32(data) ^ len(data)


SIGHTINGS = Sightings()  # one daemon per process: its metric is process-wide


def set_aside_file(path: Path, now: float | None = None) -> Path | None:
    """Rename an unreadable state file to `<name>.unreadable-<UTC timestamp>` so that an
    operator can look at it and the daemon starts without it; None if that failed too."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if now is None else now))
    target = path.with_name(f"{path.name}.unreadable-{stamp}")
    try:
        path.rename(target)
    except OSError as exc:
        log.error("cannot set %s aside: %s", path, exc)
        return None
    return target


def read_file_guarded(path: Path, store: str, then: str) -> tuple[bytes, Any] | None:
    """(bytes, JSON value) of a state file; None when it is missing, or unreadable (said,
    counted, the file renamed aside). OSError other than a missing file is raised."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        return raw, decode_json(raw)
    except Unreadable as exc:
        unreadable_file(path, store, raw, str(exc), then)
        return None


def unreadable_file(path: Path, store: str, raw: bytes, why: str, then: str) -> None:
    """Say, count and set aside a state file that holds something this version never wrote."""
    aside = set_aside_file(path)
    where = f"set aside as {aside.name}" if aside else "left in place"
    SIGHTINGS.report(store, str(path), raw, why, f"{then}; {where}")

"""One block of runs, columnar: per watchdog, the runs' times (delta of deltas), session
flags, sizes, usual status and extreme values; the subjects whose status differs from the
usual one (OK), with their values, which is all a replay reads; and, for a watchdog of at
most ALL_SUBJECTS_UP_TO subjects, every subject's value as the delta from its previous run
(zigzag varints; zlib over the block does the rest), for `recorder show` and `export`.
Pure: `Section` collects, `encode_sections` / `decode_sections` convert."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from supervisor.model import Status, Verdicts
from supervisor.recorder.catalog import WatchdogEntry
from supervisor.recorder.codec import (
    NONE,
    Reader,
    get_times,
    put_times,
    put_varint,
    symbol_value,
    value_symbol,
    zigzag,
)

MAX_SUBJECTS = 10_000_000  # a size beyond this in a block is damage, not a watchdog


def quantise(value: float | None, scale: int) -> int | None:
    if value is None or not math.isfinite(value) or abs(value) > 1e15:
        return None  # kept as "no value"; the status says what it was judged
    return round(value * scale)


@dataclass
class Section:
    """One watchdog's runs in the block being filled."""

    index: int  # the watchdog's position in the segment header
    every_subject: bool
    subjects: list[str] | None  # None: the header's list
    times_ms: list[int] = field(default_factory=list)
    open_flags: list[int] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    highest: list[int] = field(default_factory=list)  # value symbols: the run's largest value
    lowest: list[int] = field(default_factory=list)
    usuals: list[int] = field(default_factory=list)  # the status of subjects not listed
    values: bytearray = field(default_factory=bytearray)
    not_ok: bytearray = field(default_factory=bytearray)
    previous: list[int] = field(default_factory=list)  # each subject's last quantum
    samples: int = 0

    def add(self, entry: WatchdogEntry, at: float, is_open: bool, verdicts: Verdicts) -> None:
        at_ms = round(at * 1000)
        self.times_ms.append(at_ms)
        self.open_flags.append(1 if is_open else 0)
        self.sizes.append(len(verdicts))
        self.samples += len(verdicts)
        self._add_unusual(entry, verdicts)
        if self.every_subject:
            low, high = self._add_every(entry, at_ms, verdicts)
        else:
            low, high = None, verdicts.max_value  # the smallest is not known
        self.lowest.append(value_symbol(quantise(low, entry.scale)))
        self.highest.append(value_symbol(quantise(high, entry.scale)))

    def _add_every(
        self, entry: WatchdogEntry, at_ms: int, verdicts: Verdicts
    ) -> tuple[float | None, float | None]:
        scale, instant, values = entry.scale, entry.instant, self.values
        if len(self.previous) != len(verdicts):
            self.previous = [at_ms if instant else 0] * len(verdicts)
        previous = self.previous
        low: float | None = None
        high: float | None = None
        for i, verdict in enumerate(verdicts):
            status = verdict.status
            value = verdict.value
            quantum = quantise(value, scale)
            if quantum is None:
                values.append(NONE)
                continue
            if status is not Status.UNKNOWN:  # the values the thresholds judged
                assert value is not None
                high = value if high is None or value > high else high
                low = value if low is None or value < low else low
            if instant:
                quantum = at_ms - quantum
            delta = quantum - previous[i]
            previous[i] = quantum
            put_varint(values, delta * 2 + 1 if delta >= 0 else -delta * 2)
        return low, high

    def _add_unusual(self, entry: WatchdogEntry, verdicts: Verdicts) -> None:
        """The run's usual status (OK, or the one every subject got: a timeout, a closed
        session) and the subjects whose status differs, with their values: all a replay
        with the recorded config reads."""
        out, last, scale = self.not_ok, 0, entry.scale
        self.usuals.append(verdicts.usual)
        put_varint(out, len(verdicts.unusual))
        for i, verdict in verdicts.unusual.items():  # in index order: the gaps stay small
            put_varint(out, zigzag(i - last))
            last = i
            put_varint(out, verdict.status)
            put_varint(out, value_symbol(quantise(verdict.value, scale)))


def encode_sections(sections: Sequence[Section]) -> bytes:
    out = bytearray()
    put_varint(out, len(sections))
    for section in sections:
        _encode_section(out, section)
    return bytes(out)


def _encode_section(out: bytearray, section: Section) -> None:
    put_varint(out, section.index)
    put_varint(out, 1 if section.every_subject else 0)
    own = b"" if section.subjects is None else json.dumps(section.subjects).encode()
    put_varint(out, len(own))
    out += own
    put_varint(out, len(section.times_ms))
    put_times(out, section.times_ms)
    columns = (section.open_flags, section.sizes, section.usuals, section.lowest, section.highest)
    for column in columns:
        for number in column:
            put_varint(out, number)
    put_varint(out, len(section.not_ok))
    out += section.not_ok
    if section.every_subject:
        put_varint(out, len(section.values))
        out += section.values


@dataclass
class RunRecord:
    """One run as recorded: `not_ok` holds the subjects (by index) whose status is not
    `usual`, with their values; `values` (every subject's) is decoded on demand."""

    watchdog: str
    at: float
    session_open: bool
    size: int
    lowest: float | None
    highest: float | None
    not_ok: dict[int, tuple[Status, float | None]]
    subjects: Sequence[str]
    every_subject: bool
    usual: Status = Status.OK  # the status of every subject not in `not_ok`
    values: list[float | None] | None = None  # every subject's, when kept and decoded


@dataclass
class SectionHeader:
    name: str
    entry: WatchdogEntry
    subjects: Sequence[str]


def decode_sections(
    data: bytes, headers: Sequence[SectionHeader], with_values: bool
) -> list[RunRecord]:
    """Runs of a block, in order per watchdog; ValueError on anything malformed."""
    reader = Reader(data)
    runs: list[RunRecord] = []
    for _ in range(reader.varint()):
        runs += _decode_section(reader, headers, with_values)
    if reader.pos != len(data):
        raise ValueError("trailing bytes in a block")
    return runs


def _decode_section(
    reader: Reader, headers: Sequence[SectionHeader], with_values: bool
) -> list[RunRecord]:
    index = reader.varint()
    if index >= len(headers):
        raise ValueError("block names a watchdog its header lacks")
    header = headers[index]
    every = reader.varint() == 1
    own = reader.take(reader.varint())
    subjects = header.subjects if not own else _subject_list(own)
    count = reader.varint()
    times = get_times(reader, count)
    flags, sizes, usuals, lows, highs = ([reader.varint() for _ in range(count)] for _ in range(5))
    if any(size > MAX_SUBJECTS for size in sizes):
        raise ValueError("a run with more subjects than any watchdog has")
    scale = header.entry.scale
    body = Reader(reader.take(reader.varint()))
    rows: list[list[float | None]] | None = None
    if every:
        raw = reader.take(reader.varint())  # skipped unless asked for: a replay needs none
        rows = _values(raw, times, sizes, header.entry) if with_values else None
    runs = []
    for i in range(count):
        runs.append(
            RunRecord(
                header.name,
                times[i] / 1000,
                bool(flags[i]),
                sizes[i],
                _unscale(lows[i], scale),
                _unscale(highs[i], scale),
                _unusual(body, scale),
                subjects,
                every,
                _status(usuals[i]),
                rows[i] if rows is not None else None,
            )
        )
    if body.pos != len(body.data):
        raise ValueError("subject list longer than its runs")
    return runs


def _unusual(body: Reader, scale: int) -> dict[int, tuple[Status, float | None]]:
    found = {}
    subject = 0
    for _ in range(body.varint()):
        subject += body.signed()
        if subject < 0:
            raise ValueError("a negative subject index")
        status = _status(body.varint())
        quantum = symbol_value(body.varint())
        found[subject] = (status, None if quantum is None else quantum / scale)
    return found


def _values(
    raw: bytes, times: list[int], sizes: list[int], entry: WatchdogEntry
) -> list[list[float | None]]:
    reader, rows = Reader(raw), []
    previous: list[int] = []
    scale = entry.scale
    for at_ms, size in zip(times, sizes, strict=True):
        if len(previous) != size:
            previous = [at_ms if entry.instant else 0] * size
        row: list[float | None] = []
        for j in range(size):
            symbol = reader.varint()
            if symbol == NONE:
                row.append(None)
                continue
            delta = (symbol - 1) >> 1 if symbol & 1 else -(symbol >> 1)
            previous[j] += delta
            quantum = at_ms - previous[j] if entry.instant else previous[j]
            row.append(quantum / scale)
        rows.append(row)
    if reader.pos != len(raw):
        raise ValueError("values column longer than its runs")
    return rows


_STATUSES = tuple(Status)


def _status(code: int) -> Status:
    if code >= len(_STATUSES):
        raise ValueError(f"unknown status code {code}")
    return _STATUSES[code]


def _unscale(symbol: int, scale: int) -> float | None:
    quantum = symbol_value(symbol)
    return None if quantum is None else quantum / scale


def _subject_list(raw: bytes) -> list[str]:
    try:
        subjects = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"bad subject list: {exc}") from exc
    if not isinstance(subjects, list) or not all(isinstance(s, str) for s in subjects):
        raise ValueError("bad subject list")
    return subjects

"""Segment files: a magic line, then frames of [length, CRC-32, zlib(payload)]. The first
frame is the header (JSON: the config's hash, each watchdog's entry and subjects); every
other frame is a block of runs. A frame cut short or failing its CRC (a SIGKILL mid-write,
a full disk) ends the segment where the last good frame ended: the reader says so and
keeps everything before it.

Names sort by their start: `<start ms>-<config hash>.rec` under state_dir/recorder/."""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from supervisor.recorder.blocks import RunRecord, SectionHeader, decode_sections
from supervisor.recorder.catalog import WatchdogEntry

MAGIC = b"TSREC1\n"
FRAME = struct.Struct(">II")
MAX_FRAME = 256 * 1024 * 1024  # a length beyond this is garbage, not a frame
SUFFIX = ".rec"
FORMAT = 1


def frame(payload: bytes, level: int = 6) -> bytes:
    packed = zlib.compress(payload, level)
    return FRAME.pack(len(packed), zlib.crc32(packed)) + packed


def header_payload(
    config_hash: str, started_at: float, watchdogs: dict[str, tuple[WatchdogEntry, list[str]]]
) -> bytes:
    header = {
        "format": FORMAT,
        "config_hash": config_hash,
        "started_at": started_at,
        "watchdogs": [
            {"name": name, "entry": entry.to_json(), "subjects": subjects}
            for name, (entry, subjects) in watchdogs.items()
        ],
    }
    return json.dumps(header, separators=(",", ":")).encode()


@dataclass
class Segment:
    path: Path
    config_hash: str
    started_at: float
    sections: list[SectionHeader]
    frames: list[bytes] = field(default_factory=list)  # the blocks, still compressed
    problem: str | None = None  # a torn tail or a bad frame: where reading stopped and why

    @property
    def entries(self) -> dict[str, WatchdogEntry]:
        return {s.name: s.entry for s in self.sections}

    def runs(self, with_values: bool = False) -> Iterator[RunRecord]:
        """Every run, block by block; a block that will not decode ends the segment."""
        for index, packed in enumerate(self.frames):
            try:
                runs = decode_sections(zlib.decompress(packed), self.sections, with_values)
            except (ValueError, OverflowError, zlib.error) as exc:  # outside input
                self.problem = f"block {index + 1} unreadable ({exc}): the rest is skipped"
                return
            yield from sorted(runs, key=lambda run: run.at)


def segment_paths(directory: Path) -> list[Path]:
    try:
        return sorted(p for p in directory.iterdir() if p.name.endswith(SUFFIX))
    except FileNotFoundError:
        return []


def read_segment(path: Path) -> Segment:
    """The header and the intact frames; ValueError when not even the header is readable."""
    data = path.read_bytes()
    if not data.startswith(MAGIC):
        if MAGIC.startswith(data):  # created, then killed before its header was written
            raise ValueError(f"{path.name}: torn tail: cut before its header ({len(data)} bytes)")
        raise ValueError(f"{path.name}: not a recording")
    frames, problem = _frames(data, len(MAGIC))
    if not frames:
        raise ValueError(f"{path.name}: no header ({problem or 'empty'})")
    try:
        header = json.loads(zlib.decompress(frames[0]))
        segment = _segment(path, header)
    except (ValueError, OverflowError, zlib.error, TypeError, KeyError, AttributeError) as exc:
        raise ValueError(f"{path.name}: bad header: {exc}") from exc
    segment.frames = frames[1:]
    segment.problem = problem
    return segment


def _frames(data: bytes, pos: int) -> tuple[list[bytes], str | None]:
    frames: list[bytes] = []
    while pos < len(data):
        if pos + FRAME.size > len(data):
            return frames, f"torn tail: {len(data) - pos} bytes after the last whole block"
        length, crc = FRAME.unpack_from(data, pos)
        body = data[pos + FRAME.size : pos + FRAME.size + length]
        if length > MAX_FRAME or len(body) < length:
            return frames, f"torn tail: {len(data) - pos} bytes after the last whole block"
        if zlib.crc32(body) != crc:
            return frames, f"bad checksum at byte {pos}: {len(data) - pos} bytes skipped"
        frames.append(body)
        pos += FRAME.size + length
    return frames, None


def _segment(path: Path, header: Any) -> Segment:
    if header.get("format") != FORMAT:
        raise ValueError(f"format {header.get('format')!r}, this version reads {FORMAT}")
    sections = []
    for item in header["watchdogs"]:
        subjects = item["subjects"]
        if not isinstance(subjects, list) or not all(isinstance(s, str) for s in subjects):
            raise ValueError("subjects must be a list of strings")
        sections.append(
            SectionHeader(str(item["name"]), WatchdogEntry.from_json(item["entry"]), subjects)
        )
    return Segment(path, str(header["config_hash"]), float(header["started_at"]), sections)

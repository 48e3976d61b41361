"""Reading the ring back: every segment in order, each run between two instants, and what
could not be read (a torn tail, a foreign file), said rather than guessed."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from supervisor.recorder.blocks import RunRecord
from supervisor.recorder.segments import Segment, read_segment, segment_paths


@dataclass
class Recording:
    segments: list[Segment]
    problems: list[str] = field(default_factory=list)

    def runs(
        self, start: float | None = None, end: float | None = None, with_values: bool = False
    ) -> Iterator[tuple[Segment, RunRecord]]:
        """Runs with start <= at <= end, segment by segment (each segment in time order)."""
        for segment in self.segments:
            if end is not None and segment.started_at > end:
                break
            for run in segment.runs(with_values):
                if (start is None or run.at >= start) and (end is None or run.at <= end):
                    yield segment, run
            if segment.problem:
                self.problems.append(f"{segment.path.name}: {segment.problem}")


def open_recording(directory: Path, start: float | None = None) -> Recording:
    """The segments that may hold runs at or after `start` (each starts before the next)."""
    paths = segment_paths(directory)
    segments, problems = [], []
    for path in paths:
        try:
            segments.append(read_segment(path))
        except (OSError, ValueError) as exc:
            problems.append(f"{path.name}: skipped: {exc}")
    if start is not None:
        later = [i for i, s in enumerate(segments) if s.started_at > start]
        first = max(0, later[0] - 1) if later else max(0, len(segments) - 1)
        segments = segments[first:]
    return Recording(segments, problems)

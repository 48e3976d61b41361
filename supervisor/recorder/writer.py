"""The flight recorder: every watchdog run, handed over by the loop in one call that never
waits, encoded and written by a thread of its own.

The loop only puts (the run's time, its verdicts, ...) on a bounded queue; when the queue is
full the run is dropped and counted, never waited for. The thread gathers runs into a block
(BLOCK_S of them per watchdog), writes it as one frame, and rolls to a new segment when
the config (its hash) or a watchdog's subjects change, or the segment is big or old enough.
The ring keeps at most `max_bytes` and nothing older than `max_age_s`. A write that fails
(a full disk) costs that block: it is counted, said once, and the next block opens a new
segment after RETRY_S; protection never waits for any of it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from supervisor.config.settings import Settings
from supervisor.model import Verdicts
from supervisor.recorder.blocks import Section, encode_sections
from supervisor.recorder.catalog import ALL_SUBJECTS_UP_TO, WatchdogEntry, catalog, config_hash
from supervisor.recorder.segments import MAGIC, SUFFIX, frame, header_payload, segment_paths
from supervisor.sessions import Session

log = logging.getLogger("supervisor")

BLOCK_S = 30.0  # at most this much of a run's recording is lost to a SIGKILL
QUEUE_RUNS = 2000  # runs waiting for the writer before new ones are dropped
SEGMENT_S = 3600.0
RETRY_S = 10.0


@dataclass(frozen=True)
class Counters:
    """Where the recorder counts (the daemon's Prometheus counters; no-ops in tools)."""

    written: Callable[[float], None] = lambda _n: None
    dropped: Callable[[float], None] = lambda _n: None
    errors: Callable[[float], None] = lambda _n: None


@dataclass(frozen=True)
class Run:
    settings: Settings
    watchdog: str
    at: float
    verdicts: Verdicts
    subjects: list[str]
    session: Session | None


class Recorder:
    def __init__(
        self,
        directory: Path,
        max_bytes: int,
        max_age_s: float,
        counters: Counters | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.max_age_s = max_age_s
        self.counters = counters or Counters()
        self.wall = wall
        self._queue: queue.Queue[Run | None] = queue.Queue(QUEUE_RUNS)
        self._thread = threading.Thread(target=self._serve, name="recorder", daemon=True)
        self._segment = _Open(directory, max_bytes, max_age_s, self.counters, wall)
        self._thread.start()

    def record(
        self,
        settings: Settings,
        watchdog: str,
        at: float,
        verdicts: Verdicts,
        subjects: list[str],
        session: Session | None,
    ) -> None:
        """Hand one run over; never waits. A full queue drops it (counted)."""
        try:
            self._queue.put_nowait(Run(settings, watchdog, at, verdicts, subjects, session))
        except queue.Full:
            self.counters.dropped(len(verdicts))

    def close(self, timeout_s: float = 2.0) -> None:
        """Write what is gathered and stop the thread (waiting at most `timeout_s`)."""
        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=timeout_s)
        self._thread.join(timeout_s)

    def _serve(self) -> None:
        segment = self._segment
        while True:
            try:
                run = self._queue.get(timeout=1.0)
            except queue.Empty:
                segment.flush_if_due()
                continue
            if run is None:
                segment.flush()
                segment.close()
                return
            try:
                segment.add(run)
            except Exception:  # a bug in the recorder must never reach protection
                log.exception("recorder: bug while recording watchdog=%s", run.watchdog)
                self.counters.errors(1)


class _Open:
    """The segment being written and the block being gathered (the writer thread's own)."""

    def __init__(
        self,
        directory: Path,
        max_bytes: int,
        max_age_s: float,
        counters: Counters,
        wall: Callable[[], float],
    ) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.max_age_s = max_age_s
        self.counters = counters
        self.wall = wall
        self.settings: Settings | None = None
        self.hash = ""
        self.entries: dict[str, WatchdogEntry] = {}
        self.subjects: dict[str, list[str]] = {}
        self.handle: Any = None
        self.path: Path | None = None
        self.blocks = 0  # blocks written to the open segment
        self.opened_at = 0.0
        self.size = 0
        self.sections: dict[str, Section] = {}
        self.block_started = 0.0
        self.failed_at: float | None = None
        self.partial: set[str] = set()  # watchdogs recorded without every subject's value

    def add(self, run: Run) -> None:
        if run.settings is not self.settings:
            self._config(run.settings)
        entry = self.entries.get(run.watchdog)
        if entry is None:
            return  # not in this config (a run finished after a reload): its verdicts are stale
        subjects = self._subjects(run)
        if self.handle is None:  # the segment's header is not written yet: it takes these
            self.subjects.setdefault(run.watchdog, subjects)
        section = self.sections.get(run.watchdog)
        own = None if subjects == self.subjects.get(run.watchdog) else subjects
        if section is not None and section.subjects != own:
            self.flush()
            section = None
        if section is None:
            every = len(subjects) <= ALL_SUBJECTS_UP_TO
            if not every and run.watchdog not in self.partial:
                self.partial.add(run.watchdog)
                log.info(
                    "recorder: watchdog=%s has %d subjects (more than %d): each run keeps the"
                    " subjects that are not OK and the largest value, what a replay needs",
                    run.watchdog,
                    len(subjects),
                    ALL_SUBJECTS_UP_TO,
                )
            index = list(self.entries).index(run.watchdog)
            section = self.sections[run.watchdog] = Section(index, every, own)
            if not self.block_started:
                self.block_started = self.wall()
        is_open = run.session is None or run.session.opened_at(run.at) is not None
        section.add(entry, run.at, is_open, run.verdicts)
        self.flush_if_due()

    def _subjects(self, run: Run) -> list[str]:
        if len(run.subjects) == len(run.verdicts):
            return run.subjects
        return [v.subject for v in run.verdicts]  # a watchdog that judged other subjects

    def _config(self, settings: Settings) -> None:
        new_hash = config_hash(settings)
        self.settings = settings
        if new_hash == self.hash:
            return
        self.flush()
        self.close()
        self.hash = new_hash
        self.entries = catalog(settings)
        self.subjects = {}

    def flush_if_due(self) -> None:
        if self.sections and self.wall() - self.block_started >= BLOCK_S:
            self.flush()

    def flush(self) -> None:
        """Write the gathered block as one frame; on failure it is lost, and counted."""
        sections, self.sections, self.block_started = self.sections, {}, 0.0
        if not sections:
            return
        samples = sum(s.samples for s in sections.values())
        payload = frame(encode_sections(list(sections.values())))
        first_run = min(s.times_ms[0] for s in sections.values()) / 1000
        if self.handle is None and self._resting():
            self.counters.dropped(samples)  # the disk failed a moment ago: not again yet
            return
        try:
            self._ensure_open(first_run)
            self.handle.write(payload)
            self.handle.flush()
        except OSError as exc:
            self._failed(exc, samples)
            return
        self.size += len(payload)
        self.blocks += 1
        self.counters.written(len(payload))
        if self.failed_at is not None:
            log.warning("recorder: writing again (%s)", self.path.name if self.path else "")
            self.failed_at = None
        if self.size >= self._segment_bytes() or self.wall() - self.opened_at >= SEGMENT_S:
            self.close()

    def _segment_bytes(self) -> int:
        return max(1 << 20, min(64 << 20, self.max_bytes // 8))

    def _ensure_open(self, first_run: float) -> None:
        """The segment to write to; a new one starts at `first_run` (the daemon's clock)."""
        if self.handle is not None:
            return
        now = self.wall()
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._prune(now)
        path, handle = self._create(f"{round(first_run * 1000):013d}-{self.hash}")
        watchdogs = {
            name: (entry, self.subjects.get(name, [])) for name, entry in self.entries.items()
        }
        self.handle, self.path, self.opened_at, self.blocks = handle, path, now, 0
        handle.write(MAGIC + frame(header_payload(self.hash, first_run, watchdogs)))
        handle.flush()
        self.size = handle.tell()

    def _resting(self) -> bool:
        return self.failed_at is not None and self.wall() - self.failed_at < RETRY_S

    def _create(self, stem: str) -> tuple[Path, Any]:
        """A new file, never one that exists (another instance's, an earlier run's)."""
        for attempt in range(100):
            path = self.directory / f"{stem}{f'-{attempt}' if attempt else ''}{SUFFIX}"
            try:
                return path, path.open("xb")
            except FileExistsError:
                continue
        raise OSError(f"recorder: {stem}: 100 segments of that name exist")

    def _failed(self, exc: OSError, samples: int) -> None:
        self.counters.errors(1)
        self.counters.dropped(samples)
        if self.failed_at is None:
            log.error(
                "recorder: cannot write under %s: %s (recording paused; protection goes on)",
                self.directory,
                exc.strerror or exc,
            )
        self.failed_at = self.wall()
        self.close()
        if self.path is not None and self.blocks == 0:  # a header and no block: no use
            with contextlib.suppress(OSError):
                os.unlink(self.path)
        self.path = None

    def close(self) -> None:
        if self.handle is not None:
            with contextlib.suppress(OSError):
                self.handle.close()
            self.handle = None

    def _prune(self, now: float) -> None:
        """Keep the ring inside max_bytes (room for one more segment) and max_age."""
        paths = segment_paths(self.directory)
        sizes = []
        for path in paths:
            try:
                stat = path.stat()
            except OSError:
                continue
            sizes.append((path, stat.st_size, stat.st_mtime))
        total = sum(size for _, size, _ in sizes)
        budget = self.max_bytes - self._segment_bytes()
        for path, size, mtime in sizes:
            if total <= budget and now - mtime <= self.max_age_s:
                break
            with contextlib.suppress(OSError):
                os.unlink(path)
                total -= size


class Off:
    """[recorder] enabled = false: records nothing."""

    def record(self, *args: object) -> None:
        pass

    def close(self, timeout_s: float = 2.0) -> None:
        pass


def start_recorder(settings: Settings, metrics: Any) -> Recorder | Off:
    """The daemon's recorder under state_dir/recorder, counting into `metrics`."""
    section = settings.recorder
    if not section.enabled:
        return Off()
    counters = Counters(
        written=metrics.recorder_bytes.inc,
        dropped=metrics.recorder_dropped.inc,
        errors=metrics.recorder_errors.inc,
    )
    directory = settings.supervisor.state_dir / "recorder"
    return Recorder(directory, section.max_bytes, section.max_age_s, counters)

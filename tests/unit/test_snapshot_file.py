"""State files written by a worker thread: a slow disk never holds the loop, the file always
ends with the newest content handed over, and a failed write is told and written again."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from supervisor.snapshot_file import SnapshotFile
from testbed.loop_turns import LoopTurns

SLOW_FSYNC_S = 0.3


@pytest.fixture
def slow_disk(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Every fsync takes SLOW_FSYNC_S; returns the times they started."""
    real = os.fsync
    started: list[float] = []

    def fsync(fd: int) -> None:
        started.append(time.monotonic())
        time.sleep(SLOW_FSYNC_S)
        real(fd)

    monkeypatch.setattr("supervisor.snapshot_file.os.fsync", fsync)
    return started


def never_fails(path: Path, exc: OSError) -> None:
    raise AssertionError(f"unexpected failure writing {path}: {exc}")


@pytest.mark.anyio
@pytest.mark.usefixtures("slow_disk")
async def test_a_slow_fsync_does_not_hold_the_loop(tmp_path: Path) -> None:
    file = SnapshotFile(tmp_path / "engaged.json", never_fails)
    async with LoopTurns() as turns:
        started = time.monotonic()
        file.put(b"{}")
        handed_s = time.monotonic() - started
        await file.flush()
        took_s = time.monotonic() - started
    assert handed_s < SLOW_FSYNC_S / 10  # handing over never waits for the disk
    assert took_s >= SLOW_FSYNC_S  # the disk was waited for, in the thread
    assert turns.count >= turns.expected(took_s), (turns.count, took_s)  # the loop went on
    assert (tmp_path / "engaged.json").read_bytes() == b"{}"


@pytest.mark.anyio
async def test_contents_handed_over_while_one_is_written_coalesce(
    tmp_path: Path, slow_disk: list[float]
) -> None:
    """Each content is the whole file: after the one on its way, only the newest is written."""
    file = SnapshotFile(tmp_path / "pending.json", never_fails)
    for n in range(5):
        file.put(f"[{n}]".encode())
        await asyncio.sleep(0)
    await file.flush()
    assert (tmp_path / "pending.json").read_bytes() == b"[4]"
    assert len(slow_disk) == 2 * 2  # two writes, each a file and a directory fsync
    assert await file.written(5, 0)  # every content handed over counts as written


@pytest.mark.anyio
@pytest.mark.usefixtures("slow_disk")
async def test_written_waits_within_its_budget(tmp_path: Path) -> None:
    file = SnapshotFile(tmp_path / "pending.json", never_fails)
    first = file.put(b"[1]")
    assert not await file.written(first, SLOW_FSYNC_S / 3)  # the disk is slower than that
    assert await file.written(first, 10 * SLOW_FSYNC_S)
    second = file.put(b"[2]")
    third = file.put(b"[3]")  # coalesced with the second
    assert await file.written(second, 10 * SLOW_FSYNC_S)
    assert await file.written(third, 0)  # settled with it
    assert (tmp_path / "pending.json").read_bytes() == b"[3]"


@pytest.mark.anyio
async def test_a_failed_write_is_told_and_the_next_content_is_written(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    state_dir.write_text("a file where the directory should be")  # root ignores chmod
    failures: list[tuple[Path, OSError]] = []
    file = SnapshotFile(state_dir / "engaged.json", lambda p, e: failures.append((p, e)))
    settled = await file.written(file.put(b'{"breaker": 1}'), 5)
    assert settled and len(failures) == 1 and failures[0][0] == state_dir / "engaged.json"
    assert isinstance(failures[0][1], OSError)

    state_dir.unlink()
    await file.written(file.put(b'{"breaker": 1}'), 5)  # as `persist` does once writable
    assert (state_dir / "engaged.json").read_bytes() == b'{"breaker": 1}'
    assert len(failures) == 1


@pytest.mark.anyio
async def test_a_cancelled_waiter_leaves_the_write_alone(tmp_path: Path) -> None:
    file = SnapshotFile(tmp_path / "engaged.json", never_fails)
    waiting = asyncio.create_task(file.written(file.put(b"{}"), 5))
    await asyncio.sleep(0)
    waiting.cancel()
    await file.flush()
    assert (tmp_path / "engaged.json").read_bytes() == b"{}"


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.binary(max_size=20), st.integers(0, 3)), min_size=1, max_size=12))
def test_the_file_ends_with_the_newest_content_whatever_the_timing(
    tmp_path_factory: pytest.TempPathFactory, puts: list[tuple[bytes, int]]
) -> None:
    """Contents handed over with any number of loop turns between them (the writer's thread
    finishing anywhere in between): once flushed, the file holds the last one, and every
    number handed out counts as written."""
    path = tmp_path_factory.mktemp("snapshot") / "state.json"

    async def scenario() -> None:
        file = SnapshotFile(path, never_fails)
        numbers = []
        for content, turns in puts:
            numbers.append(file.put(content))
            for _ in range(turns):
                await asyncio.sleep(0)
        await file.flush()
        assert path.read_bytes() == puts[-1][0]
        assert numbers == list(range(1, len(puts) + 1))
        assert all([await file.written(n, 0) for n in numbers])

    asyncio.run(scenario())

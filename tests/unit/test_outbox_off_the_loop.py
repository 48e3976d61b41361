"""With PostgreSQL away every audit event is fsync'd into the outbox, and an fsync on a busy
disk can take seconds (nemesis seed 30: PostgreSQL stopping, its checkpoint on the shared
disk, a SIGHUP storm recording an event per reload; the leader's loop stalled 1.8 s and its
lease went to the other instance). The line is written in the loop, in order with every
other write and replay; only the wait for the disk runs in a worker thread."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

import pytest

from supervisor.publish.audit import AuditEvent, AuditKind, AuditOutcome, AuditTrail
from testbed.loop_turns import LoopTurns

pytestmark = pytest.mark.anyio

SLOW_FSYNC_S = 0.3


def config_event(n: int) -> AuditEvent:
    return AuditEvent.new(AuditKind.CONFIG, reason=f"reload {n}", outcome=AuditOutcome.OK)


@pytest.fixture
def slow_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    real = os.fsync

    def fsync(fd: int) -> None:
        time.sleep(SLOW_FSYNC_S)
        real(fd)

    monkeypatch.setattr("supervisor.publish.outbox.os.fsync", fsync)


@pytest.mark.usefixtures("slow_disk")
async def test_a_slow_fsync_of_the_outbox_does_not_stall_the_loop(tmp_path: Path) -> None:
    trail = AuditTrail(tmp_path, None, None, "sup", "a")  # no PostgreSQL: the outbox
    async with LoopTurns() as turns:
        started = time.monotonic()
        await trail.record(config_event(0))
        took_s = time.monotonic() - started
    assert took_s >= SLOW_FSYNC_S  # it did wait for the disk
    assert turns.count >= turns.expected(took_s), (turns.count, took_s)  # the loop went on
    assert len(trail.outbox.read_all()) == 1


@pytest.mark.usefixtures("slow_disk")
async def test_events_recorded_at_once_reach_the_outbox_in_order(tmp_path: Path) -> None:
    trail = AuditTrail(tmp_path, None, None, "sup", "a")
    events = [config_event(n) for n in range(5)]
    await asyncio.gather(*(trail.record(event) for event in events))
    stored = [json.loads(line)["id"] for line in trail.outbox.read_all()]
    assert stored == [event.id for event in events]


@pytest.mark.usefixtures("slow_disk")
async def test_a_line_written_and_not_yet_synced_is_already_in_the_file(tmp_path: Path) -> None:
    """What a replay (or a SIGKILL) sees while the fsync is under way: the line, once."""
    trail = AuditTrail(tmp_path, None, None, "sup", "a")
    recording = asyncio.create_task(trail.record(config_event(0)))
    await asyncio.sleep(SLOW_FSYNC_S / 3)
    assert not recording.done() and len(trail.outbox.read_all()) == 1
    await recording
    assert len(trail.outbox.read_all()) == 1


@pytest.mark.usefixtures("slow_disk")
async def test_an_event_cancelled_on_its_way_to_the_disk_is_synced_and_its_file_closed(
    tmp_path: Path,
) -> None:
    """The shutdown cancels what is in flight: the line still reaches the disk, and the
    outbox's file descriptor is not left open."""
    trail = AuditTrail(tmp_path, None, None, "sup", "a")
    await trail.record(config_event(-1))
    recording = asyncio.create_task(trail.record(config_event(0)))
    await asyncio.sleep(0)  # on its way
    recording.cancel()
    with pytest.raises(asyncio.CancelledError):
        await recording
    await asyncio.sleep(2 * SLOW_FSYNC_S)  # the sync goes on, shielded
    assert len(trail.outbox.read_all()) == 2
    assert open_under(tmp_path) == []


def open_under(directory: Path) -> list[str]:
    """This process's descriptors open on files under `directory`. Only these: other tests
    of the same worker open and close sockets and pipes meanwhile (CI counted 45 for 40)."""
    targets = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # closed between the listing and the reading
            continue
        if target.startswith(str(directory)):
            targets.append(target)
    return targets

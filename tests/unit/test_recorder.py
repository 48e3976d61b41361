"""The flight recorder's encoding and ring: what goes in comes out, a torn tail costs only
itself, a full disk never stops the caller, the ring stays inside its bounds."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from supervisor.config.settings import Settings
from supervisor.model import Status, Verdict, Verdicts
from supervisor.recorder.codec import Reader, get_times, put_times
from supervisor.recorder.recording import open_recording
from supervisor.recorder.writer import Recorder

INSTRUMENTS = ["SPX", "ES", "NQ", "CL"]


def settings_for(state_dir: Path, instruments: list[str] = INSTRUMENTS) -> Settings:
    return Settings.model_validate(
        {
            "supervisor": {"state_dir": str(state_dir)},
            "actuators": {"breaker": {"kind": "redis_breaker", "level": "reduce_only"}},
            "watchdogs": [
                {
                    "name": "ticks",
                    "kind": "tick_freshness",
                    "key": "ticks:{instrument}",
                    "instruments": instruments,
                    "warn": "5s",
                    "breach": "10s",
                    "on_breach": ["breaker"],
                }
            ],
        }
    )


def verdicts_at(ages: Sequence[float | None], statuses: list[Status]) -> Verdicts:
    return Verdicts.of(
        [
            Verdict("ticks", name, status, "r", age, "s")
            for name, age, status in zip(INSTRUMENTS, ages, statuses, strict=True)
        ]
    )


@given(st.lists(st.integers(-(2**40), 2**40), max_size=50))
def test_times_round_trip(times: list[int]) -> None:
    out = bytearray()
    put_times(out, times)
    assert get_times(Reader(bytes(out)), len(times)) == times


def record(tmp_path: Path, runs: list[tuple[float, Verdicts]]) -> Path:
    directory = tmp_path / "recorder"
    settings = settings_for(tmp_path)
    recorder = Recorder(directory, 64 << 20, 86400.0)
    for at, verdicts in runs:
        recorder.record(settings, "ticks", at, verdicts, INSTRUMENTS, None)
    recorder.close()
    return directory


@settings(max_examples=30, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.lists(
                st.one_of(st.none(), st.floats(0, 1e6, allow_nan=False)), min_size=4, max_size=4
            ),
            st.lists(st.sampled_from(list(Status)), min_size=4, max_size=4),
        ),
        min_size=1,
        max_size=20,
    )
)
def test_what_is_recorded_reads_back(
    tmp_path_factory: pytest.TempPathFactory,
    runs: list[tuple[list[float | None], list[Status]]],
) -> None:
    tmp_path = tmp_path_factory.mktemp("rec")
    start = 1_790_000_000.0
    recorded = [(start + i, verdicts_at(ages, statuses)) for i, (ages, statuses) in enumerate(runs)]
    recording = open_recording(record(tmp_path, recorded))
    back = [run for _segment, run in recording.runs(with_values=True)]
    assert recording.problems == []
    assert len(back) == len(runs)
    for (at, verdicts), run in zip(recorded, back, strict=True):
        assert run.at == pytest.approx(at, abs=1e-3)
        assert run.size == 4
        assert [run.not_ok.get(i, (Status.OK, None))[0] for i in range(4)] == [
            v.status for v in verdicts
        ]
        assert run.values is not None
        for want, got in zip(verdicts, run.values, strict=True):
            if want.value is None:
                assert got is None
            else:
                assert got == pytest.approx(want.value, abs=0.0011)


def test_a_torn_tail_costs_only_the_tail(tmp_path: Path) -> None:
    ok = [Status.OK] * 4
    directory = record(
        tmp_path, [(1_790_000_000.0 + i, verdicts_at([1.0] * 4, ok)) for i in range(5)]
    )
    (path,) = directory.iterdir()
    whole = path.read_bytes()
    # a second block, cut in the middle as a SIGKILL during its write would leave it
    directory2 = record(tmp_path / "b", [(1_790_000_100.0, verdicts_at([2.0] * 4, ok))])
    (other,) = directory2.iterdir()
    extra = other.read_bytes()[len(b"TSREC1\n") :]
    path.write_bytes(whole + extra[: len(extra) // 2])
    recording = open_recording(directory)
    runs = [run for _s, run in recording.runs()]
    assert len(runs) == 5
    assert any("torn tail" in p for p in recording.problems)


@pytest.mark.parametrize("cut_at", [0, 3])
def test_a_segment_cut_before_its_header_is_a_torn_tail(tmp_path: Path, cut_at: int) -> None:
    """A SIGKILL between creating the next segment and writing its header leaves an empty
    file (CI, test_recorder_sigkill): said as a torn tail, not as a foreign file, and the
    runs before it are all read."""
    ok = [Status.OK] * 4
    directory = record(
        tmp_path, [(1_790_000_000.0 + i, verdicts_at([1.0] * 4, ok)) for i in range(3)]
    )
    (directory / "1790000099000-0000000000000000.rec").write_bytes(b"TSREC1\n"[:cut_at])
    (directory / "1790000099500-foreign.rec").write_bytes(b"not ours at all")
    recording = open_recording(directory)
    assert len([run for _s, run in recording.runs()]) == 3
    torn, foreign = recording.problems
    assert f"torn tail: cut before its header ({cut_at} bytes)" in torn
    assert "not a recording" in foreign


def test_a_disk_that_refuses_writes_never_blocks_and_is_counted(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    errors: list[float] = []
    dropped: list[float] = []
    from supervisor.recorder.writer import Counters

    recorder = Recorder(
        blocked / "recorder",
        64 << 20,
        86400.0,
        Counters(dropped=dropped.append, errors=errors.append),
    )
    settings = settings_for(tmp_path)
    started = time.perf_counter()
    for i in range(100):
        recorder.record(
            settings,
            "ticks",
            1.79e9 + i,
            verdicts_at([1.0] * 4, [Status.OK] * 4),
            INSTRUMENTS,
            None,
        )
    assert time.perf_counter() - started < 0.5  # handing over never waits for the disk
    recorder.close()
    assert errors and sum(dropped) == 400


def test_values_that_overflow_are_kept_as_no_value(tmp_path: Path) -> None:
    verdicts = verdicts_at([math.inf, 1e300, math.nan, 3.0], [Status.BREACH] * 3 + [Status.OK])
    recording = open_recording(record(tmp_path, [(1.79e9, verdicts)]))
    (run,) = [run for _s, run in recording.runs(with_values=True)]
    assert run.values == [None, None, None, pytest.approx(3.0)]
    assert run.not_ok[0][0] is Status.BREACH


def stale_run(at: float, stale: dict[str, float]) -> Verdicts:
    """SPX..CL: 1 s old, except `stale` (instrument -> age), judged at warn 5 s, breach 10 s."""
    ages = [stale.get(name, 1.0) for name in INSTRUMENTS]
    statuses = [
        Status.BREACH if age > 10 else Status.WARN if age > 5 else Status.OK for age in ages
    ]
    return verdicts_at(ages, statuses)


def day(start: float) -> list[tuple[float, Verdicts]]:
    """60 runs: ES grows stale from run 10 to 30 (warn, breach), then ticks again."""
    return [
        (start + i, stale_run(start + i, {"ES": i - 9.0} if 10 <= i < 30 else {}))
        for i in range(60)
    ]


def test_over_the_subject_limit_a_replay_still_takes_every_decision(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from supervisor.recorder import writer
    from supervisor.recorder.replay import Replay

    runs = day(1_790_000_000.0)
    whole = Replay(None).run(open_recording(record(tmp_path / "whole", runs)), None, None)
    monkeypatch.setattr(writer, "ALL_SUBJECTS_UP_TO", 2)  # 4 instruments: "too many"
    sparse_dir = record(tmp_path / "sparse", runs)
    sparse = Replay(None).run(open_recording(sparse_dir), None, None)
    assert whole.decisions and [(d.severity, d.at) for d in sparse.decisions] == [
        (d.severity, d.at) for d in whole.decisions
    ]
    looser = settings_for(tmp_path).model_copy()
    dog = looser.watchdogs[0].model_copy(update={"breach_s": 15.0})
    looser = looser.model_copy(update={"watchdogs": [dog]})
    later = Replay(looser).run(open_recording(sparse_dir), None, None)
    assert [d.at - whole.decisions[0].at for d in later.decisions] == [pytest.approx(5.0)]
    (run,) = [r for _s, r in open_recording(sparse_dir).runs(1_790_000_020.0, 1_790_000_020.0)]
    assert not run.every_subject and run.highest == pytest.approx(11.0)
    assert list(run.not_ok) == [1]
    assert run.not_ok[1][0] is Status.BREACH and run.not_ok[1][1] == pytest.approx(11.0)


def test_show_escapes_subjects_from_outside(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from supervisor.cli import main

    directory = tmp_path / "recorder"
    recorder = Recorder(directory, 64 << 20, 86400.0)
    evil = "lock:\x1b[2J\nFAKE OK"
    verdicts = Verdicts.of([Verdict("ticks", evil, Status.BREACH, "r", 30.0, "s")])
    recorder.record(settings_for(tmp_path), "ticks", 1_790_000_000.0, verdicts, [evil], None)
    recorder.close()
    at = "2026-09-21T14:13:20+00:00"  # 1_790_000_000
    assert main(["recorder", "show", "--at", at, "--recording", str(directory)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\nFAKE OK" not in out
    assert "BREACH" in out and "age 30s" in out


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_a_damaged_or_hostile_segment_is_named_never_a_crash(
    tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    """What the recorder wrote is outside input when read back: flip, cut or extend it
    anywhere, and reading says what it skipped, and never raises."""
    from supervisor.recorder.replay import Replay

    directory = _one_recording(tmp_path_factory)
    (path,) = directory.iterdir()
    raw = bytearray(path.read_bytes())
    for _ in range(data.draw(st.integers(1, 4))):
        where = data.draw(st.integers(0, len(raw) - 1))
        raw[where] = data.draw(st.integers(0, 255))
    raw = raw[: data.draw(st.integers(0, len(raw)))] + data.draw(st.binary(max_size=64))
    copy = tmp_path_factory.mktemp("damaged")
    (copy / path.name).write_bytes(bytes(raw))
    recording = open_recording(copy)
    for _segment, _run in recording.runs(with_values=True):
        pass
    Replay(None).run(open_recording(copy), None, None)


_RECORDED: list[Path] = []


def _one_recording(factory: pytest.TempPathFactory) -> Path:
    if not _RECORDED:
        _RECORDED.append(record(factory.mktemp("source"), day(1_790_000_000.0)))
    return _RECORDED[0]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.lists(st.integers(0, 2**70), max_size=30))
def test_a_block_with_a_good_checksum_and_garbage_inside_is_skipped(
    tmp_path_factory: pytest.TempPathFactory, junk: bytes, numbers: list[int]
) -> None:
    """A crafted frame passes the CRC; its content is still checked (huge varints too)."""
    from supervisor.recorder.codec import put_varint
    from supervisor.recorder.replay import Replay
    from supervisor.recorder.segments import frame

    directory = _one_recording(tmp_path_factory)
    (path,) = directory.iterdir()
    varints = bytearray()
    for number in numbers:
        put_varint(varints, number)
    copy = tmp_path_factory.mktemp("crafted")
    payload = path.read_bytes() + frame(bytes(varints) + junk)
    (copy / path.name).write_bytes(payload)
    recording = open_recording(copy)
    runs = [run for _s, run in recording.runs(with_values=True)]
    assert len(runs) >= 60  # everything before the crafted block
    Replay(None).run(open_recording(copy), None, None)


def test_the_ring_drops_the_oldest_segments_past_its_size_and_age(tmp_path: Path) -> None:
    directory = tmp_path / "recorder"
    directory.mkdir()
    now = time.time()
    old = directory / "1000000000000-aaaa.rec"  # 2001: older than max_age
    old.write_bytes(b"x")
    os.utime(old, (now - 7200, now - 7200))
    big = [directory / f"17000000{i:05d}-bbbb.rec" for i in range(4)]
    for path in big:
        path.write_bytes(b"y" * (1 << 20))  # 4 MiB in all
    recorder = Recorder(directory, 4 << 20, 3600.0)  # room: 4 MiB less a 1 MiB segment
    recorder.record(settings_for(tmp_path), "ticks", now, stale_run(now, {}), INSTRUMENTS, None)
    recorder.close()
    left = sorted(p.name for p in directory.iterdir())
    assert old.name not in left
    assert [p.name for p in big if p.name in left] == [p.name for p in big[1:]]
    assert len(left) == 4  # the three newest (3 MiB) and the new segment


def test_recorder_settings_change_only_on_restart_and_sizes_parse(tmp_path: Path) -> None:
    from supervisor.daemon.assembly import restart_only_changes
    from supervisor.recorder.writer import Off, start_recorder

    running = settings_for(tmp_path)
    data = running.model_dump(by_alias=True)
    data["recorder"] = {"enabled": False, "max_bytes": "512MiB", "max_age": "48h"}
    changed = Settings.model_validate(data)
    assert changed.recorder.max_bytes == 512 << 20 and changed.recorder.max_age_s == 172800
    assert restart_only_changes(running, changed) == ["[recorder]: changes only on restart"]
    assert isinstance(start_recorder(changed, metrics=None), Off)
    for bad in ({"max_bytes": "1MiB"}, {"max_bytes": "lots"}, {"max_age": "10m"}):
        data["recorder"] = bad
        with pytest.raises(ValueError, match="recorder"):
            Settings.model_validate(data)


def test_replay_plot_draws_the_timeline_or_says_what_it_needs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib.util

    from supervisor.cli import main

    directory = record(tmp_path, day(1_790_000_000.0))
    png = tmp_path / "timeline.png"
    code = main(["replay", "--recording", str(directory), "--plot", str(png)])
    captured = capsys.readouterr()
    if importlib.util.find_spec("matplotlib") is None:  # the bench extra only
        assert code == 2 and "--plot needs matplotlib" in captured.err
        assert not png.exists()
    else:
        assert code == 0 and f"plot: {png}" in captured.out
        assert png.read_bytes().startswith(b"\x89PNG") and png.stat().st_size > 10_000
    assert "would engage breaker" in captured.out  # the timeline is printed either way

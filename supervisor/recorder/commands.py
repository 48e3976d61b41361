"""`recorder show`, `recorder export` and `replay`: reading the flight recorder. Every line
printed goes through supervisor/text.py (subjects and reasons are outside text)."""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TextIO

import anyio

from supervisor.config.loading import find_config, load_config
from supervisor.constants import EX_OK
from supervisor.model import Status
from supervisor.publish.audit.read import parse_since
from supervisor.quantities import format_value
from supervisor.recorder.blocks import RunRecord
from supervisor.recorder.diff import render_diff, trips_diff
from supervisor.recorder.instants import stamp
from supervisor.recorder.plot import PlotUnavailable, plot
from supervisor.recorder.prometheus import replay_prometheus
from supervisor.recorder.recording import Recording, open_recording
from supervisor.recorder.replay import Replay, Timeline
from supervisor.recorder.segments import Segment
from supervisor.secrets import mask_url
from supervisor.text import safe_line

Printer = Callable[[str], None]
EX_USAGE = 2  # as argparse exits on a bad command line
FROM_HELP = "from this instant (ISO-8601 or '10m' ago); default: the recording's first run"
TO_HELP = "up to this instant (ISO-8601 or '10m' ago); default: its last run"


def add_commands(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    recorder = commands.add_parser("recorder", help="what the flight recorder saw")
    actions = recorder.add_subparsers(required=True, metavar="ACTION")
    show = actions.add_parser(
        "show", parents=[common], help="values and statuses around an instant"
    )
    _where(show)
    show.add_argument("--at", required=True, type=_time, metavar="T", help="ISO-8601 or '10m'")
    show.add_argument("--around", default=2.0, type=float, metavar="S", help="seconds either side")
    show.add_argument("--watchdog", metavar="W", help="only this watchdog's runs")
    show.add_argument("--subject", metavar="S", help="only this subject (an instrument, a key)")
    show.add_argument("--limit", default=20, type=int, help="subjects shown per run")
    show.set_defaults(handler=cmd_show)
    export = actions.add_parser("export", parents=[common], help="runs as CSV, for a notebook")
    _where(export)
    export.add_argument("--format", choices=["csv"], default="csv", help="CSV only")
    export.add_argument("--from", dest="start", type=_time, metavar="T", help=FROM_HELP)
    export.add_argument("--to", dest="end", type=_time, metavar="T", help=TO_HELP)
    export.add_argument("--watchdog", metavar="W", help="only this watchdog's runs")
    export.add_argument("--output", "-o", type=Path, metavar="FILE", help="default: stdout")
    export.set_defaults(handler=cmd_export)
    replay = commands.add_parser(
        "replay",
        parents=[common],
        help="the policy over the recording (--config: a candidate config); touches nothing",
    )
    _where(replay)
    replay.add_argument("--from", dest="start", type=_time, metavar="T", help=FROM_HELP)
    replay.add_argument("--to", dest="end", type=_time, metavar="T", help=TO_HELP)
    replay.add_argument(
        "--recorded", action="store_true", help="the recording's own config, even with --config"
    )
    replay.add_argument(
        "--plot", type=Path, metavar="FILE.png", help="draw the timeline (needs matplotlib)"
    )
    replay.add_argument(
        "--prometheus",
        metavar="URL",
        help="no recording: the values from Prometheus range queries (needs --from)",
    )
    replay.add_argument(
        "--query",
        action="append",
        default=[],
        metavar="NAME=PROMQL",
        help="with --prometheus: watchdog NAME's values (prometheus_query: its own query)",
    )
    replay.set_defaults(handler=cmd_replay)


def _where(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--recording", type=Path, metavar="DIR", help="default: the config's state_dir/recorder"
    )


def _time(text: str) -> float:
    try:
        return parse_since(text, time.time())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def recording_dir(args: argparse.Namespace) -> Path:
    if args.recording is not None:
        return Path(args.recording)
    settings = load_config(find_config(args.config))
    return settings.supervisor.state_dir / "recorder"


def say(line: str) -> None:
    print(safe_line(line, 400), flush=False)


def cmd_show(args: argparse.Namespace) -> int:
    recording = open_recording(recording_dir(args), args.at - args.around)
    runs = recording.runs(args.at - args.around, args.at + args.around, with_values=True)
    shown = 0
    for segment, run in runs:
        if args.watchdog and run.watchdog != args.watchdog:
            continue
        shown += 1
        for line in describe_run(segment, run, args.subject, args.limit):
            say(line)
    if not shown:
        say(f"nothing recorded within {args.around:g} s of {stamp(args.at)}")
    _notes(recording, say)
    return EX_OK


def describe_run(segment: Segment, run: RunRecord, subject: str | None, limit: int) -> list[str]:
    entry = segment.entries[run.watchdog]
    counts = _counts(run)
    summary = ", ".join(f"{n} {s.name}" for s, n in counts.items() if n)
    session = "open" if run.session_open else "closed"
    lines = [
        f"{stamp(run.at)} {run.watchdog} [{entry.kind}, session {session},"
        f" config {segment.config_hash}]: {run.size} subjects: {summary or 'none'}"
    ]
    for _index, name, status, value in _subjects_to_show(run, subject, limit):
        shown = _value(value, entry.instant, run.at)
        lines.append(f"    {name:<24} {status.name:<8} {shown}")
    hidden = len(run.not_ok) - limit if subject is None and run.values is None else 0
    if not run.every_subject:
        lines.append(
            f"    (recorded: the subjects not {run.usual.name} and the largest value,"
            f" {format_value(run.highest, '')})"
        )
    if hidden > 0:
        lines.append(f"    (+{hidden} more)")
    return lines


def _counts(run: RunRecord) -> dict[Status, int]:
    counts = dict.fromkeys(Status, 0)
    for status, _value in run.not_ok.values():
        counts[status] += 1
    counts[run.usual] += run.size - len(run.not_ok)
    return counts


def _subjects_to_show(
    run: RunRecord, subject: str | None, limit: int
) -> Iterator[tuple[int, str, Status, float | None]]:
    names = run.subjects
    indices: list[int]
    if subject is not None:
        indices = [i for i in range(min(run.size, len(names))) if names[i] == subject]
    else:
        indices = sorted(run.not_ok)[:limit]
        if len(indices) < limit and run.values is not None:  # fill with OK ones
            indices += [i for i in range(run.size) if i not in run.not_ok][: limit - len(indices)]
    for i in indices:
        status, value = run.not_ok.get(i, (run.usual, None))
        if run.values is not None and i < len(run.values):
            value = run.values[i]
        name = names[i] if i < len(names) else f"#{i}"
        yield i, name, status, value


def _value(value: float | None, instant: bool, at: float) -> str:
    if value is None:
        return "no value"
    if instant:
        return f"age {format_value(value, 's')} (since {stamp(at - value)})"
    return format_value(value, "")


def _notes(recording: Recording, emit: Printer) -> None:
    for problem in recording.problems:
        emit(f"note: {problem}")


def cmd_export(args: argparse.Namespace) -> int:
    recording = open_recording(recording_dir(args), args.start)
    if args.output is None:
        _write_csv(recording, args, sys.stdout)
    else:
        with args.output.open("w", newline="", encoding="utf-8") as handle:
            _write_csv(recording, args, handle)
    _notes(recording, lambda line: print(safe_line(line), file=sys.stderr))
    return EX_OK


def _write_csv(recording: Recording, args: argparse.Namespace, out: TextIO) -> None:
    writer = csv.writer(out)
    writer.writerow(
        ["time", "epoch", "watchdog", "subject", "status", "value", "session_open", "config"]
    )
    for segment, run in recording.runs(args.start, args.end, with_values=True):
        if args.watchdog and run.watchdog != args.watchdog:
            continue
        common = [stamp(run.at), f"{run.at:.3f}", run.watchdog]
        tail = [int(run.session_open), segment.config_hash]
        for _i, name, status, value in _every_row(run):
            shown = "" if value is None else f"{value:.9g}"
            writer.writerow([*common, name, status.name, shown, *tail])


def _every_row(run: RunRecord) -> Iterator[tuple[int, str, Status, float | None]]:
    if run.every_subject:
        yield from _subjects_to_show(run, None, run.size)
        return
    yield from _subjects_to_show(run, None, len(run.not_ok))
    yield -1, "(largest value)", run.usual, run.highest


def cmd_replay(args: argparse.Namespace) -> int:
    if args.prometheus:
        return _replay_prometheus(args)
    directory = recording_dir(args)
    candidate = None
    if args.config is not None and not args.recorded:
        candidate = load_config(find_config(args.config))
    recorded = Replay(None).run(open_recording(directory, args.start), args.start, args.end)
    if candidate is None:
        render_timeline(recorded, "the recording's own config", say)
        return _plot(recorded, args.plot)
    replayed = Replay(candidate).run(open_recording(directory, args.start), args.start, args.end)
    render_timeline(replayed, f"candidate {args.config}", say)
    say("")
    render_diff(trips_diff(recorded, replayed), say)
    return _plot(replayed, args.plot)


def _plot(timeline: Timeline, path: Path | None) -> int:
    if path is None:
        return EX_OK
    try:
        plot(timeline, timeline.thresholds, path)
    except PlotUnavailable as exc:
        return _usage(str(exc))
    say(f"plot: {path}")
    return EX_OK


def render_timeline(timeline: Timeline, what: str, emit: Printer) -> None:
    emit(f"replay with {what}: {timeline.runs} runs, {len(timeline.decisions)} decisions")
    if timeline.first is not None and timeline.last is not None:
        emit(f"runs from {stamp(timeline.first)} to {stamp(timeline.last)}")
    if timeline.configs:
        emit(f"recorded by config {', '.join(timeline.configs)}")
    for event in timeline.events:
        label = event.status.name if event.what != "cleared" else "cleared"
        emit(f"{stamp(event.at)}  {event.watchdog:<20} {label:<8} {event.text}")
    for name, why in sorted(timeline.unreplayable.items()):
        emit(f"cannot replay {name}: {why}")
    for note in timeline.notes:
        emit(f"note: {note}")


def _replay_prometheus(args: argparse.Namespace) -> int:
    if args.start is None:
        return _usage("replay --prometheus needs --from")
    queries = {}
    for item in args.query:
        name, sep, query = item.partition("=")
        if not sep or not name or not query:
            return _usage(f"--query {item!r}: write NAME=PROMQL")
        queries[name] = query
    settings = load_config(find_config(args.config))
    end = args.end if args.end is not None else time.time()
    timeline = anyio.run(replay_prometheus, settings, args.prometheus, queries, args.start, end)
    render_timeline(timeline, f"{mask_url(args.prometheus)} (range queries)", say)
    return _plot(timeline, args.plot)


def _usage(text: str) -> int:
    print(f"trading-supervisor: {safe_line(text)}", file=sys.stderr)
    return EX_USAGE

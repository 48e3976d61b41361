"""`replay --plot FILE.png`: per watchdog, the largest value of each run against its
thresholds, the incidents shaded and the trips marked. matplotlib is not a dependency of
the daemon (it is in the `bench` extra): without it, `--plot` says so and draws nothing."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from supervisor.recorder.catalog import Thresholds
from supervisor.recorder.replay import Timeline

LEVELS = (("warn", "#d9a400"), ("breach", "#d9480f"), ("critical", "#a61e4d"))


class PlotUnavailable(Exception):
    pass


def plot(timeline: Timeline, thresholds: Mapping[str, Thresholds | None], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise PlotUnavailable(
            "--plot needs matplotlib (not a dependency of the daemon):"
            " pip install matplotlib, or scripts/bootstrap --bench"
        ) from exc
    names = sorted(timeline.values)
    figure, axes = plt.subplots(
        len(names) or 1, 1, figsize=(11, 2.6 * max(1, len(names))), squeeze=False
    )
    for axis, name in zip(axes[:, 0], names, strict=False):
        _draw(axis, name, timeline, thresholds.get(name))
    figure.autofmt_xdate()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _draw(axis: Any, name: str, timeline: Timeline, limits: Thresholds | None) -> None:
    """One watchdog: its runs' largest values, its thresholds, incidents and trips."""
    points = timeline.values[name]
    times = [datetime.fromtimestamp(at) for at, _ in points]
    axis.plot(times, [v for _, v in points], lw=0.8, color="#1c7ed6", label="largest value")
    for level, colour in LEVELS:
        value = getattr(limits, level, None) if limits is not None else None
        if value is not None:
            axis.axhline(value, color=colour, ls="--", lw=0.8, label=level)
    opened = None
    for event in (e for e in timeline.events if e.watchdog == name):
        when = datetime.fromtimestamp(event.at)
        if event.what == "opened":
            opened = when
        elif event.what == "cleared" and opened is not None:
            axis.axvspan(opened, when, color="#ffe8cc", alpha=0.6)
            opened = None
        elif event.what == "fired":
            axis.axvline(when, color="#c92a2a", lw=1.2)
    axis.set_title(f"{name}: trips (red lines), incidents (shaded)", fontsize=9)
    axis.legend(fontsize=7, loc="upper left")

"""The benchmark table, and what a process costs, read from /proc."""

from __future__ import annotations

import math
import os
import statistics
import time
from dataclasses import dataclass, field

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Row:
    figure: str
    target: str  # "" for a figure measured for information
    measured: str
    met: bool | None  # None: no target

    @property
    def verdict(self) -> str:
        return {True: "met", False: "NOT MET", None: "-"}[self.met]


@dataclass
class Figures:
    """What docs/benchmark.png is drawn from, filled by the sections that ran."""

    evaluation_s: dict[int, float] = field(default_factory=dict)  # instruments -> one check
    fault_to_kill_s: dict[str, list[float]] = field(default_factory=dict)  # system -> trials


def render(rows: list[Row]) -> str:
    headers = ("figure", "target", "measured", "met")
    cells = [(r.figure, r.target or "-", r.measured, r.verdict) for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


def machine() -> str:
    load = os.getloadavg()
    return f"{os.cpu_count()} cores, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile: with 25 values, p99 is the largest."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(fraction * len(ordered))) - 1]


def median(values: list[float]) -> float:
    return statistics.median(values)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the whole process (every thread), in seconds."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


@dataclass(frozen=True)
class Usage:
    cpu_percent: float  # of one core
    rss_max_mb: float
    seconds: float


def usage_over(pid: int, seconds: float, every_s: float = 1.0) -> Usage:
    """CPU share and the largest RSS of `pid` over the next `seconds`."""
    started, cpu_before = time.monotonic(), cpu_seconds(pid)
    rss = [rss_mb(pid)]
    while time.monotonic() - started < seconds:
        time.sleep(min(every_s, max(0.0, seconds - (time.monotonic() - started))))
        rss.append(rss_mb(pid))
    elapsed = time.monotonic() - started
    return Usage((cpu_seconds(pid) - cpu_before) / elapsed * 100, max(rss), elapsed)

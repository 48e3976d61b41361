"""Every benchmark against real servers (redis-server, the HTTP kill endpoint, the daemon
as a subprocess, and for the side-by-side `anchors` Prometheus + Alertmanager and monit),
printed as one table: figure, target, measured, met or not; and drawn to docs/benchmark.png.

    .venv/bin/python -m benchmarks                       # everything, about 10 minutes
    .venv/bin/python -m benchmarks --quick               # shorter windows, fewer trials
    .venv/bin/python -m benchmarks --only evaluation,latency --png /tmp/b.png

What only the benchmarks need (Alertmanager, monit, curl, matplotlib) is installed first
when missing, by `scripts/bootstrap --bench`.

Figures on a shared machine are noisy: compare within one run, repeat, and read the medians.
The older single-purpose scripts still run on their own: `benchmarks.check_cost` (cost per
instrument count) and `benchmarks.detection_latency` (breaker trip after the threshold).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks import daemon_load, evaluation, idle, kill_latency, plot, setup
from benchmarks.anchors import compare
from benchmarks.report import Figures, Row, machine, render
from testbed import REPO_ROOT

PNG = REPO_ROOT / "docs" / "benchmark.png"

Section = Callable[[bool, Figures], list[Row]]
SECTIONS: dict[str, Section] = {
    "evaluation": lambda quick, figures: evaluation.rows(
        repeats=5 if quick else 9, layouts=not quick, into=figures
    ),
    "daemon": lambda quick, _: daemon_load.rows(seconds=10 if quick else 20),
    "latency": lambda quick, _: kill_latency.rows(20 if quick else 25, 3 if quick else 5),
    "idle": lambda quick, _: idle.rows(seconds=10 if quick else 20, starts=2 if quick else 3),
    # 20 faults each for the daemon, Prometheus tuned and monit, round-robin; Prometheus
    # with its defaults takes minutes per fault: 3 (1 with --quick), in parallel.
    "anchors": lambda quick, figures: compare.rows(
        trials=6 if quick else 20, default_trials=1 if quick else 3, into=figures
    ),
}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--only", help=f"comma-separated: {', '.join(SECTIONS)}")
    parser.add_argument("--quick", action="store_true", help="shorter windows, fewer trials")
    parser.add_argument("--png", type=Path, default=PNG, help=f"the picture (default {PNG})")
    parser.add_argument("--no-png", action="store_true", help="draw no picture")
    args = parser.parse_args()
    chosen = args.only.split(",") if args.only else list(SECTIONS)
    unknown = [name for name in chosen if name not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}: choose from {', '.join(SECTIONS)}")
    setup.ensure()
    print(f"machine: {machine()}", flush=True)
    rows: list[Row] = []
    figures = Figures()
    started = time.monotonic()
    for name in chosen:
        print(f"running {name}...", file=sys.stderr, flush=True)
        rows += SECTIONS[name](args.quick, figures)
    print(render(rows))
    print(f"{time.monotonic() - started:.0f} s; machine after: {machine()}")
    if not args.no_png:
        plot.draw(figures, args.png)
        print(f"picture: {args.png}")
    missed = [row for row in rows if row.met is False]
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())

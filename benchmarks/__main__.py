"""Every benchmark against real servers (redis-server, the HTTP kill endpoint, the daemon
as a subprocess), printed as one table: figure, target, measured, met or not.

    .venv/bin/python -m benchmarks                       # everything, 4-5 minutes
    .venv/bin/python -m benchmarks --quick               # shorter windows, fewer trials
    .venv/bin/python -m benchmarks --only evaluation,latency

Figures on a shared machine are noisy: compare within one run, repeat, and read the medians.
The older single-purpose scripts still run on their own: `benchmarks.check_cost` (cost per
instrument count) and `benchmarks.detection_latency` (breaker trip after the threshold).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

from benchmarks import daemon_load, evaluation, idle, kill_latency
from benchmarks.report import Row, machine, render

Section = Callable[[bool], list[Row]]
SECTIONS: dict[str, Section] = {
    "evaluation": lambda quick: evaluation.rows(repeats=5 if quick else 9, layouts=not quick),
    "daemon": lambda quick: daemon_load.rows(seconds=10 if quick else 20),
    "latency": lambda quick: kill_latency.rows(20 if quick else 25, 3 if quick else 5),
    "idle": lambda quick: idle.rows(seconds=10 if quick else 20, starts=2 if quick else 3),
}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--only", help=f"comma-separated: {', '.join(SECTIONS)}")
    parser.add_argument("--quick", action="store_true", help="shorter windows, fewer trials")
    args = parser.parse_args()
    chosen = args.only.split(",") if args.only else list(SECTIONS)
    unknown = [name for name in chosen if name not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}: choose from {', '.join(SECTIONS)}")
    print(f"machine: {machine()}", flush=True)
    rows: list[Row] = []
    started = time.monotonic()
    for name in chosen:
        print(f"running {name}...", file=sys.stderr, flush=True)
        rows += SECTIONS[name](args.quick)
    print(render(rows))
    print(f"{time.monotonic() - started:.0f} s; machine after: {machine()}")
    missed = [row for row in rows if row.met is False]
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())

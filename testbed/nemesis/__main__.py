"""`python -m testbed.nemesis --seed 42 --duration 30m [--faults sigstop,sigkill,...]`

Draws the schedule from the seed, plays it against real processes, checks the history and
prints the figures. Exit 0 when no invariant was violated, 1 otherwise (the seed and the
schedule are printed then: the same command re-runs the same schedule; timing is real, so
outcomes may vary slightly between runs). `--check history.json` re-checks a saved history.
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import tempfile
from pathlib import Path

from testbed.nemesis.checker import check, summary
from testbed.nemesis.history import History
from testbed.nemesis.report import figures, run
from testbed.nemesis.schedule import ALL_FAULTS, make_schedule


def duration(text: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(s|m|h)?", text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (90s, 30m, 1h)")
    return float(match.group(1)) * {"s": 1, "m": 60, "h": 3600}[match.group(2) or "s"]


def fault_list(text: str) -> tuple[str, ...]:
    if text == "all":
        return ALL_FAULTS
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [name for name in names if name not in ALL_FAULTS]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown fault(s) {', '.join(unknown)}; known: {', '.join(ALL_FAULTS)}"
        )
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m testbed.nemesis", description=__doc__)
    parser.add_argument("--seed", type=int, default=None, help="default: a random one, printed")
    parser.add_argument("--duration", type=duration, default=duration("3m"))
    parser.add_argument("--faults", type=fault_list, default=ALL_FAULTS, help="comma list or all")
    parser.add_argument("--without", type=fault_list, default=(), help="faults to leave out")
    parser.add_argument("--instances", type=int, choices=(2, 3), default=2)
    parser.add_argument("--dir", type=Path, help="keep the run's files here (default: a temp dir)")
    parser.add_argument("--print-schedule", action="store_true", help="print it and stop")
    parser.add_argument("--check", type=Path, help="check a saved history.json and stop")
    args = parser.parse_args(argv)
    if args.check is not None:
        verdicts = check(History.load(args.check))
        print(summary(verdicts))
        return 1 if any(v.violations for v in verdicts) else 0
    seed = args.seed if args.seed is not None else random.randrange(1, 10**6)
    kinds = tuple(kind for kind in args.faults if kind not in args.without)
    schedule = make_schedule(seed, args.duration, kinds, args.instances)
    print(schedule.describe(), flush=True)
    if args.print_schedule:
        return 0
    directory = args.dir or Path(tempfile.mkdtemp(prefix=f"nemesis-{seed}-"))
    directory.mkdir(parents=True, exist_ok=True)
    result = run(schedule, directory, lambda line: print(line, flush=True))
    print(figures(result))
    print(f"history: {directory / 'history.json'}; daemon logs under {directory}")
    if result.violations:
        again = f"python -m testbed.nemesis --seed {seed} --duration {args.duration:.0f}s"
        print(
            f"FAILED: re-run with: {again} --faults {','.join(kinds)} --instances {args.instances}"
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

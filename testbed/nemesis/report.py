"""One nemesis run end to end (`run`), and the figures it ends with (`figures`)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from testbed.nemesis.checker import Verdict, check, summary
from testbed.nemesis.history import History
from testbed.nemesis.runner import Runner
from testbed.nemesis.schedule import Schedule


@dataclass
class Result:
    schedule: Schedule
    history: History
    verdicts: list[Verdict]
    wall_s: float

    @property
    def violations(self) -> int:
        return sum(len(v.violations) for v in self.verdicts)


def run(schedule: Schedule, directory: Path, say: Callable[[str], None] = print) -> Result:
    started = time.monotonic()
    history = Runner(schedule, directory, say).run()
    history.save(directory / "history.json")
    return Result(schedule, history, check(history), time.monotonic() - started)


def figures(result: Result) -> str:
    """What a run ends with: faults by kind, incidents, invariants checked, violations."""
    kinds = Counter(f.kind for f in result.history.faults if "skipped" not in f.detail)
    skipped = sum("skipped" in f.detail for f in result.history.faults)
    required = next(v.checked for v in result.verdicts if v.invariant == "no missed trip")
    checked = sum(v.checked for v in result.verdicts)
    lines = [
        f"nemesis seed={result.schedule.seed}: {result.wall_s:.0f}s of wall time,"
        f" {len(result.history.instances)} instances",
        f"  faults injected: {sum(kinds.values())} ("
        + ", ".join(f"{kind} {n}" for kind, n in sorted(kinds.items()))
        + f"){f'; {skipped} skipped' if skipped else ''}",
        f"  incidents: {len(result.history.windows)} stale windows, {required} long enough"
        f" to require a trip; venue requests {len(result.history.venue)},"
        f" breaker trips {len(result.history.breaker)}",
        f"  invariants: {len(result.verdicts)}, cases checked {checked},"
        f" violations {result.violations}",
        summary(result.verdicts),
    ]
    return "\n".join(lines)

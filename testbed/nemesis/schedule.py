"""The nemesis schedule: stale windows of the feed and faults, drawn from a seed alone.

Pure: `make_schedule(seed, ...)` always returns the same schedule for the same arguments.
Times are seconds after the stack is up, on the runner's monotonic clock. Stale windows and
faults come from two separate random streams (`{seed}:windows`, `{seed}:faults`), so running
a seed with a subset of the faults (`--faults`) keeps its incidents and the faults it still
has at the same places. Who a fault hits ("the leader", "a follower") is decided when it is
injected, by reading the lease: timing is real, so outcomes may differ slightly between runs
of one seed; the schedule never does.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

# What one fault can be. The process faults hit one daemon, one at a time; the
# infrastructure faults hit Redis or PostgreSQL, one at a time, independently of the first.
PROCESS_FAULTS = (
    "sigstop",  # SIGSTOP, then SIGCONT after `duration_s` (past lease_ttl: a split brain)
    "sigkill",  # SIGKILL, restarted after `duration_s`
    "blackhole",  # the instance's own proxy to Redis swallows everything for `duration_s`
    "clock",  # its wall clock (libfaketime) stepped by `offset_s` for `duration_s`
    "reload_storm",  # `count` SIGHUPs within `duration_s`
    "garbage_file",  # SIGKILL, garbage in a state_dir file, restarted after `duration_s`
    "duplicate_id",  # a second process with the same instance_id for `duration_s`
)
INFRA_FAULTS = (
    "redis_restart",  # redis-server SIGKILLed, started empty after `duration_s`
    "flushall",  # FLUSHALL
    "garbage",  # garbage written to one key of the namespace
    "pg_stop",  # PostgreSQL stopped (immediate), started again after `duration_s`
)
ALL_FAULTS = PROCESS_FAULTS + INFRA_FAULTS

# Garbage: each is a value a reader must survive (any type, any depth, overflowing numbers).
GARBAGE_VALUES = (
    "huge_int",  # valid JSON whose number does not fit a float (1 followed by 400 zeros)
    "deep",  # JSON nested 100,000 deep
    "not_utf8",  # bytes that are not UTF-8
    "wrong_shape",  # valid JSON of another shape (a list)
    "wrong_type",  # another Redis type at the key (a list)
    "not_a_number",  # text where a number is kept
    "max_int",  # 2**63-1: an INCR of it overflows
)
# Keys of the namespace (without the "{ns}:" prefix); "instance:*" is an instance's record.
GARBAGE_KEYS = (
    "engaged",
    "order:kill",
    "order:breaker",
    "leader",
    "leader:fencing",
    "seq",
    "reset",
    "state",
    "events",
    "instances",
    "instance:*",
)
# The keys read on every pass or at a takeover, and the values JSON parsers choke on, come
# up more often: a short run should meet them.
GARBAGE_KEY_WEIGHTS = (3, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1)
GARBAGE_VALUE_WEIGHTS = (3, 2, 1, 1, 1, 1, 1)
STATE_FILES = ("engaged.json", "pending-actions.json")
CLOCK_OFFSETS_S = (3600.0, -3600.0, 30.0, -30.0, 0.8, -0.8)


@dataclass(frozen=True)
class Timing:
    """The daemons' settings that the bounds are made of, and the allowance for a loaded
    machine (process scheduling on a shared 2-core host), never for a wrong answer."""

    breach_s: float = 1.5
    interval_s: float = 0.5
    lease_ttl_s: float = 2.0
    slack_s: float = 1.5


@dataclass(frozen=True)
class StaleWindow:
    """The feed stops writing `instruments` from `start_s` for `duration_s`; the operator
    resets the breaker and the kill switch at `reset_s` (an incident is over)."""

    index: int
    start_s: float
    duration_s: float
    instruments: tuple[str, ...]
    reset_s: float

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s


@dataclass(frozen=True)
class Fault:
    index: int
    kind: str
    at_s: float
    duration_s: float = 0.0
    role: str | None = None  # "leader" or "follower" for a process fault
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def end_s(self) -> float:
        return self.at_s + self.duration_s


@dataclass(frozen=True)
class Schedule:
    seed: int
    duration_s: float
    faults_enabled: tuple[str, ...]
    instances: tuple[str, ...]
    timing: Timing
    windows: tuple[StaleWindow, ...]
    faults: tuple[Fault, ...]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    def describe(self) -> str:
        """One line per event, in time order: what a failing run prints with its seed."""
        lines = [
            f"schedule seed={self.seed} duration={self.duration_s:.0f}s"
            f" instances={','.join(self.instances)} faults={','.join(self.faults_enabled)}"
        ]
        events: list[tuple[float, str]] = [
            (
                w.start_s,
                f"stale #{w.index} {'+'.join(w.instruments)} for {w.duration_s:.2f}s,"
                f" reset at {w.reset_s:.2f}s",
            )
            for w in self.windows
        ]
        for f in self.faults:
            who = f" {f.role}" if f.role else ""
            extra = "".join(f" {k}={v}" for k, v in sorted(f.detail.items()))
            events.append(
                (f.at_s, f"fault #{f.index} {f.kind}{who} for {f.duration_s:.2f}s{extra}")
            )
        lines += [f"  {at:8.2f}s  {text}" for at, text in sorted(events)]
        return "\n".join(lines)


WARMUP_S = 3.0  # the stack settles (one leader, fresh ticks) before the first event
TAIL_S = 4.0  # nothing starts this close to the end
RESET_AFTER_S = 2.0  # the feed is fresh again this long before the operator resets
RESET_TAKES_S = 6.0  # two CLI runs on a loaded machine (~2.5 s each)


def make_schedule(
    seed: int,
    duration_s: float,
    faults: Sequence[str] = ALL_FAULTS,
    instances: int = 2,
    timing: Timing | None = None,
    mean_fault_gap_s: float = 4.0,
) -> Schedule:
    unknown = sorted(set(faults) - set(ALL_FAULTS))
    if unknown:
        raise ValueError(f"unknown fault kind(s): {', '.join(unknown)}")
    if not 2 <= instances <= 3:
        raise ValueError("two or three instances")
    timing = timing or Timing()
    enabled = tuple(kind for kind in ALL_FAULTS if kind in faults)
    names = tuple("abc"[:instances])
    windows = _windows(random.Random(f"{seed}:windows"), duration_s, timing)
    process = [kind for kind in PROCESS_FAULTS if kind in enabled]
    infra = [kind for kind in INFRA_FAULTS if kind in enabled]
    lanes = [
        _lane(random.Random(f"{seed}:faults:{lane}"), kinds, duration_s, timing, mean_fault_gap_s)
        for lane, kinds in (("process", process), ("infra", infra))
    ]
    merged = sorted((f for lane in lanes for f in lane), key=lambda f: f.at_s)
    numbered = tuple(
        Fault(i, f.kind, f.at_s, f.duration_s, f.role, f.detail) for i, f in enumerate(merged)
    )
    return Schedule(seed, duration_s, enabled, names, timing, windows, numbered)


def _windows(rng: random.Random, duration_s: float, timing: Timing) -> tuple[StaleWindow, ...]:
    """Incidents one after another: a fresh gap, a stale window (long: must trip; short:
    must not; medium: may), the feed fresh again, then the operator's reset."""
    windows: list[StaleWindow] = []
    long_min = timing.breach_s + timing.interval_s + timing.lease_ttl_s + 2 * timing.slack_s + 1
    t = WARMUP_S
    while True:
        start = t + rng.uniform(1.5, 4.0)
        kind = rng.choices(("long", "short", "medium"), weights=(6, 2, 2))[0]
        if kind == "long":
            length = rng.uniform(long_min, long_min + 6)
        elif kind == "short":
            length = rng.uniform(0.2, timing.breach_s - 0.6)
        else:
            length = rng.uniform(timing.breach_s, timing.breach_s + timing.interval_s + 1)
        instruments = rng.choice((("SPX",), ("ES",), ("SPX", "ES")))
        reset = start + length + RESET_AFTER_S
        if reset + RESET_TAKES_S > duration_s - TAIL_S:
            return tuple(windows)
        windows.append(StaleWindow(len(windows), start, length, instruments, reset))
        t = reset + RESET_TAKES_S


def _lane(
    rng: random.Random, kinds: list[str], duration_s: float, timing: Timing, mean_gap_s: float
) -> list[Fault]:
    faults: list[Fault] = []
    t = WARMUP_S + rng.uniform(0, mean_gap_s)
    while kinds:
        fault = _fault(rng, rng.choice(kinds), t, timing)
        if fault.end_s > duration_s - TAIL_S:
            return faults
        faults.append(fault)
        t = fault.end_s + rng.uniform(1.0, 2 * mean_gap_s)
    return faults


def _fault(rng: random.Random, kind: str, at: float, timing: Timing) -> Fault:  # noqa: C901
    lease = timing.lease_ttl_s
    role = rng.choice(("leader", "follower")) if kind in PROCESS_FAULTS else None
    if kind == "sigstop":
        return Fault(0, kind, at, rng.uniform(0.5, 2.5 * lease), role)
    if kind == "sigkill":
        return Fault(0, kind, at, rng.uniform(0.3, 3.0), role)
    if kind == "blackhole":
        return Fault(0, kind, at, rng.uniform(1.0, 3 * lease), role)
    if kind == "clock":
        offset = rng.choice(CLOCK_OFFSETS_S)
        return Fault(0, kind, at, rng.uniform(3.0, 12.0), role, {"offset_s": offset})
    if kind == "reload_storm":
        return Fault(0, kind, at, rng.uniform(1.0, 4.0), role, {"count": rng.randint(5, 40)})
    if kind == "garbage_file":
        spoiled = {"file": rng.choice(STATE_FILES), "value": rng.choice(("huge_int", "deep"))}
        return Fault(0, kind, at, rng.uniform(0.3, 2.0), role, spoiled)
    if kind == "duplicate_id":
        return Fault(0, kind, at, rng.uniform(3.0, 10.0), role)
    if kind == "redis_restart":
        return Fault(0, kind, at, rng.uniform(0.2, 2.0))
    if kind == "pg_stop":
        return Fault(0, kind, at, rng.uniform(3.0, 15.0))
    if kind == "garbage":
        key = rng.choices(GARBAGE_KEYS, weights=GARBAGE_KEY_WEIGHTS)[0]
        value = rng.choices(GARBAGE_VALUES, weights=GARBAGE_VALUE_WEIGHTS)[0]
        detail: dict[str, Any] = {"key": key, "value": value}
        if key in ("engaged", "reset", "state") or key.startswith("instance:"):
            detail["field"] = rng.choice(("breaker", "kill", "bogus"))
        if key == "instance:*":
            detail["instance_pick"] = rng.random()
        return Fault(0, kind, at, 0.0, None, detail)
    assert kind == "flushall", kind
    return Fault(0, kind, at)

"""The daemon's clock: wall-clock time that a wrong step of the system clock does not move.

Ages compare "now" with timestamps other hosts wrote (ticks, breaker updates), so "now" must
be wall time. But a wrong step of this host's clock (`date -s`, a bad time source) must not
make every tick look an hour old (a false kill switch) or an hour young (a blind protector).
So now = the wall time at an anchor + the monotonic time since, and the system clock is
watched. When it disagrees, which time to believe is decided by `decide` (a pure function):

- a second opinion confirms the system clock (Redis' TIME, the server the producers write
  to, is nearer the new time than the old; or, without a usable Redis sample, the kernel says
  NTP has synchronised it): believed at once;
- Redis' TIME refutes it (nearer the old time): ignored for as long as it does;
- no second opinion, and the disagreement is at most STEP_S: followed at SLEW_RATE (a boot-time
  NTP step of a fraction of a second is followed within 10 s, and ages never jump);
- no second opinion, and larger: ignored until it has held for SETTLE_S.

Slews (NTP's gentle corrections) move the monotonic clock too, so they need none of this.
Every step and every correction is logged once, with its size.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

log = logging.getLogger(__name__)

AGREE_S = 0.005  # a disagreement up to this is reading noise: nothing moves, nothing is said
STEP_S = 1.0  # larger, and unconfirmed: a step that is believed only once it has held
SETTLE_S = 300.0  # believe an unconfirmed large step once it has held this long
SLEW_RATE = 0.1  # an unconfirmed small step is followed at 100 ms per second (1 s in 10 s)
REFERENCE_WINDOW_S = 30.0  # Redis TIME samples kept; the one with the smallest round trip wins
KERNEL_CACHE_S = 1.0  # the kernel's NTP state is asked at most once a second


class Opinion(Enum):
    CONFIRMS = "confirms"  # a second source is nearer the system clock than the daemon's
    REFUTES = "refutes"  # ...nearer the daemon's clock than the system clock
    NONE = "none"  # no second source, or it cannot tell


@dataclass(frozen=True)
class Move:
    """How far to move the daemon's clock now, and why."""

    by_s: float
    why: str  # "agree", "confirmed", "refuted", "slewing", "held", "waiting"


def second_opinion(
    disagreement_s: float,
    reference_s: float | None,
    uncertainty_s: float,
    kernel_synced: bool | None,
) -> Opinion:
    """Whether another source backs the system clock, which is `disagreement_s` from the
    daemon's clock. `reference_s` is Redis' TIME minus the daemon's clock (None: no recent
    sample), good to `uncertainty_s`. Redis decides when it can tell which of the two it is
    nearer; otherwise the kernel's NTP state can confirm, never refute."""
    half = abs(disagreement_s) / 2
    if reference_s is not None:
        if abs(reference_s - disagreement_s) + uncertainty_s < half:
            return Opinion.CONFIRMS
        if abs(reference_s) + uncertainty_s < half:
            return Opinion.REFUTES
    return Opinion.CONFIRMS if kernel_synced else Opinion.NONE


def decide(disagreement_s: float, held_s: float, elapsed_s: float, opinion: Opinion) -> Move:
    """How far to move the daemon's clock toward the system clock, which is `disagreement_s`
    ahead of it (negative: behind) and has been more than STEP_S off for `held_s`;
    `elapsed_s` passed since the last decision. Never past the system clock, never away
    from it; an unconfirmed large step not at all until it has held SETTLE_S."""
    if abs(disagreement_s) <= AGREE_S:
        return Move(0.0, "agree")
    if opinion is Opinion.CONFIRMS:
        return Move(disagreement_s, "confirmed")
    if opinion is Opinion.REFUTES:
        return Move(0.0, "refuted")
    if abs(disagreement_s) <= STEP_S:
        limit = SLEW_RATE * max(elapsed_s, 0.0)
        return Move(max(-limit, min(limit, disagreement_s)), "slewing")
    if held_s >= SETTLE_S:
        return Move(disagreement_s, "held")
    return Move(0.0, "waiting")


@dataclass(frozen=True)
class Sample:
    """One Redis TIME reading: `offset_s` is Redis' time minus the monotonic clock at the
    round trip's middle (the monotonic clock never steps, so a sample stays comparable)."""

    at: float  # monotonic, when it was received
    offset_s: float
    rtt_s: float


class Reference:
    """Redis TIME samples over REFERENCE_WINDOW_S; the best is the smallest round trip."""

    def __init__(self) -> None:
        self._samples: deque[Sample] = deque()

    def add(self, redis_time: float, sent: float, received: float) -> None:
        rtt = max(received - sent, 0.0)
        self._samples.append(Sample(received, redis_time - (sent + received) / 2, rtt))

    def best(self, mono: float) -> Sample | None:
        while self._samples and mono - self._samples[0].at > REFERENCE_WINDOW_S:
            self._samples.popleft()
        return min(self._samples, key=lambda s: s.rtt_s, default=None)


class KernelNtp:
    """Whether the kernel says NTP has synchronised the clock (adjtimex(2): not TIME_ERROR);
    None where it cannot be asked. Asked once at start, so that a sandbox that forbids it
    (systemd's ProtectClock=yes blocks even a read) is found then, and never asked again."""

    TIME_ERROR = 5

    def __init__(self) -> None:
        self._checked_at = float("-inf")
        self._synced: bool | None = None
        self.problem: str | None = None  # why it cannot be asked
        self._adjtimex: Callable[[ctypes.c_void_p], int] | None = None
        name = ctypes.util.find_library("c")
        try:
            self._adjtimex = ctypes.CDLL(name, use_errno=True).adjtimex if name else None
        except (OSError, AttributeError) as exc:
            self.problem = f"no adjtimex in the C library: {exc}"
        else:
            self.synced(0.0)

    def synced(self, mono: float) -> bool | None:
        if self._adjtimex is None:
            return None
        if mono - self._checked_at >= KERNEL_CACHE_S:
            self._checked_at = mono
            timex = ctypes.create_string_buffer(512)  # struct timex, modes 0: read only
            state = self._adjtimex(ctypes.cast(timex, ctypes.c_void_p))
            if state < 0:
                self.problem = f"adjtimex: {os.strerror(ctypes.get_errno())}"
                self._adjtimex = None
                return None
            self._synced = state != self.TIME_ERROR
        return self._synced


class SteadyClock:
    def __init__(
        self,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        kernel_synced: Callable[[float], bool | None] | None = None,
    ) -> None:
        self._wall = wall
        self.monotonic = monotonic
        if kernel_synced is None:
            kernel = KernelNtp()
            kernel_synced = kernel.synced
            if kernel.problem is not None:
                log.info(
                    "the kernel's NTP state cannot be read (%s): Redis TIME is the only second"
                    " opinion on a step of the system clock",
                    kernel.problem,
                )
        self._kernel_synced = kernel_synced
        self._anchor_mono, self._anchor_wall, _spread = self._read()
        self._last_mono = self._anchor_mono
        self._stepped_since: float | None = None  # monotonic: when a large disagreement began
        self._wall_offset = self._anchor_wall - self._anchor_mono  # to notice the next step
        self._moved_s = 0.0  # how far this clock moved since the system clock last stepped
        self.reference = Reference()

    def _read(self) -> tuple[float, float, float]:
        """The monotonic and the wall clock at one moment, and how long the reading took: the
        wall clock is read between two monotonic readings and set against their middle, so
        the time a read takes (a few ms under libfaketime, which reads a file) is not
        mistaken for a disagreement."""
        before = self.monotonic()
        wall = self._wall()
        after = self.monotonic()
        return (before + after) / 2, wall, after - before

    def __call__(self) -> float:
        mono, wall, spread = self._read()
        steady = self._anchor_wall + (mono - self._anchor_mono)
        if spread > AGREE_S:  # preempted while reading: the two clocks cannot be compared
            return steady
        disagreement = wall - steady
        elapsed, self._last_mono = mono - self._last_mono, mono
        if abs(disagreement) <= STEP_S:
            self._stepped_since = None
        elif self._stepped_since is None:
            self._stepped_since = mono
        stepped = self._noticed_step(wall - mono)
        if abs(disagreement) <= AGREE_S and stepped is None:
            return steady
        opinion, whose = self._opinion(disagreement, mono)
        held = 0.0 if self._stepped_since is None else mono - self._stepped_since
        move = decide(disagreement, held, elapsed, opinion)
        if stepped is not None:
            log_step(stepped, disagreement, move, whose)
        self._anchor_wall += move.by_s
        self._moved_s += move.by_s
        if abs(disagreement - move.by_s) <= AGREE_S and abs(self._moved_s) > AGREE_S:
            log.warning(
                "daemon clock corrected by %+.3fs (%s): it agrees with the system clock again",
                self._moved_s,
                move.why,
            )
            self._moved_s = 0.0
        return steady + move.by_s

    def _noticed_step(self, wall_offset: float) -> float | None:
        """The system clock's step since the last call (its offset from the monotonic
        clock moved), or None."""
        step = wall_offset - self._wall_offset
        if abs(step) <= AGREE_S:
            return None
        self._wall_offset = wall_offset
        return step

    def _opinion(self, disagreement: float, mono: float) -> tuple[Opinion, str]:
        """The second opinion, and whose it is (for the log)."""
        reference = self.reference_offset(mono)
        reference_s, uncertainty_s = reference if reference else (None, 0.0)
        if reference_s is not None:
            alone = second_opinion(disagreement, reference_s, uncertainty_s, None)
            if alone is not Opinion.NONE:
                return alone, "Redis TIME"
        kernel = second_opinion(disagreement, None, 0.0, self._kernel_synced(mono))
        return kernel, "the kernel's NTP state"

    def observe_reference(self, redis_time: float, sent: float, received: float) -> None:
        """A Redis TIME answer; `sent` and `received` on this clock's monotonic clock."""
        self.reference.add(redis_time, sent, received)

    def reference_offset(self, mono: float | None = None) -> tuple[float, float] | None:
        """Redis' TIME minus this clock, and its uncertainty (half the round trip), from the
        best recent sample; None without one."""
        mono = self.monotonic() if mono is None else mono
        best = self.reference.best(mono)
        if best is None:
            return None
        steady_minus_mono = self._anchor_wall - self._anchor_mono
        return best.offset_s - steady_minus_mono, best.rtt_s / 2

    def offset_s(self) -> float:
        """How far the system clock is from this one now (0 unless a step is not believed,
        or not yet)."""
        return self._wall() - self()


def log_step(step_s: float, disagreement_s: float, move: Move, whose: str) -> None:
    what = {
        "agree": "back in agreement with this daemon's clock",
        "confirmed": f"confirmed by {whose}: believed at once",
        "refuted": "refuted by Redis TIME: ages keep the daemon's clock",
        "slewing": f"no second opinion: followed at {SLEW_RATE * 1000:.0f} ms/s, within"
        f" {abs(disagreement_s) / SLEW_RATE:.1f}s",
        "held": "it has held: believed",
        "waiting": f"ages keep the daemon's clock; the new time is believed if it holds for"
        f" {SETTLE_S:.0f}s or a second opinion confirms it",
    }[move.why]
    log.warning(
        "system clock stepped by %+.3fs (%+.3fs from the daemon's clock): %s",
        step_s,
        disagreement_s,
        what,
    )

"""What the daemon has learned since it started, and the one global answer derived from it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from supervisor import __version__
from supervisor.daemon.problems import Problems, Source
from supervisor.global_state import Engagement, GlobalState, derive_global_state
from supervisor.latch import Latch
from supervisor.model import Decision, TradingState, WatchdogRun
from supervisor.policy import PolicyState
from supervisor.publish.redis_state import StateSnapshot


@dataclass
class Ordered:
    """An action ordered and not yet confirmed: its level counts at once (a kill that keeps
    failing must not leave trading reported ACTIVE for `retry_for`)."""

    level: TradingState
    decision: Decision
    failing: str = ""  # the last failed attempt, "" while none failed

    @property
    def reason(self) -> str:
        name = self.decision.actuators[0]
        state = f"FAILING ({self.failing})" if self.failing else "not yet confirmed"
        return f"{name} ordered by {self.decision.source}, {state} — {self.decision.reason}"


@dataclass
class Releasing:
    """An actuator a manual reset released whose store still read engaged: the reset waits
    for the venue. Trading stays at its level (the venue's truth) until the store reads
    released; never engaged again on its own."""

    level: TradingState
    since: float  # when the daemon saw the reset (its clock)
    told: bool = False  # the long wait was said (journal, DEGRADED)

    def reason(self, name: str) -> str:
        return f"{name} reset, waiting for the venue to release"


@dataclass
class Runtime:
    trading_since: float
    policy: dict[str, PolicyState] = field(default_factory=dict)  # per watchdog
    runs: dict[str, WatchdogRun] = field(default_factory=dict)  # the last run per watchdog
    engaged: dict[str, Latch] = field(default_factory=dict)  # only a reset removes one
    problems: Problems = field(default_factory=Problems)  # the supervisor's own
    cut_offs: dict[str, int] = field(default_factory=dict)  # watchdog -> checks cut off in a row
    resets: dict[str, int] | None = None  # actuator -> its last reset's number, as last read
    ordered: dict[str, Ordered] = field(default_factory=dict)  # actuator -> not yet confirmed
    releasing: dict[str, Releasing] = field(default_factory=dict)  # reset, venue still engaged
    summary: GlobalState | None = None
    restored: bool = False  # the trading state was restored at start and has not changed
    clock_offset: tuple[float, float] | None = None  # Redis TIME - this clock, uncertainty

    def forget_watchdogs_except(self, kept: Iterable[str]) -> list[str]:
        """Drop what is known of watchdogs a reload removed; return their names."""
        keep = set(kept)
        gone = sorted((set(self.policy) | set(self.runs)) - keep)
        for name in gone:
            self.policy.pop(name, None)
            self.runs.pop(name, None)
            self.cut_offs.pop(name, None)
            self.problems.clear(Source.WATCHDOG, name)
        return gone

    def global_state(self, watchdogs: Iterable[str]) -> GlobalState:
        """The trading state, health and reason; `watchdogs` are the configured ones, in order
        (one that has not run yet is "starting", not counted as OK)."""
        configured = list(watchdogs)
        states = {name: self.policy[name] for name in configured if name in self.policy}
        verdicts = {name: (state.status, state.reason) for name, state in states.items()}
        engaged = self.engagements()
        problems = self.problems.summary()
        waiting = len(configured) - len(states)
        return derive_global_state(
            engaged, verdicts, problems, waiting=waiting, restored=self.restored
        )

    def engagements(self) -> dict[str, Engagement]:
        """What sets the trading state: latches, resets still waiting for their venue, and
        actions ordered but not yet confirmed."""
        shown = {n: Engagement(r.level, r.reason(n)) for n, r in self.releasing.items()}
        shown.update({n: Engagement(o.level, o.reason, False) for n, o in self.ordered.items()})
        shown.update({n: Engagement(lt.level, lt.reason) for n, lt in self.engaged.items()})
        return shown

    @property
    def levels(self) -> set[TradingState]:
        """The levels engaged at the stores: latches, and resets still waiting for the venue."""
        latched = {latch.level for latch in self.engaged.values()}
        return latched | {waiting.level for waiting in self.releasing.values()}

    @property
    def breaker_tripped(self) -> bool:
        return TradingState.REDUCE_ONLY in self.levels

    @property
    def kill_engaged(self) -> bool:
        return bool(self.levels & {TradingState.HALTED, TradingState.FLATTEN})

    def snapshot(
        self, summary: GlobalState, instance: str, leader: str, now: float
    ) -> StateSnapshot:
        return StateSnapshot(
            trading_state=summary.trading_state.name,
            health=summary.health.name,
            breaker="TRIPPED" if self.breaker_tripped else "OPEN",
            kill_switch="ENGAGED" if self.kill_engaged else "OFF",
            reason=summary.reason,
            since=self.trading_since,
            instance=instance,
            leader=leader,
            version=__version__,
            updated_at=now,
            clock_offset="" if self.clock_offset is None else f"{self.clock_offset[0]:+.6f}",
            clock_offset_uncertainty=(
                "" if self.clock_offset is None else f"{self.clock_offset[1]:.6f}"
            ),
        )

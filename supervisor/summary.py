"""The supervisor's one global answer, derived from what it knows. Pure.

Trading state = the most restrictive level of any engaged actuator. Health = HALTED when
trading is halted or flattened, DEGRADED when the supervisor cannot see everything it
should (a watchdog UNKNOWN, Redis unreachable, an action failing), OK otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from supervisor.model import Health, Status, TradingState


@dataclass(frozen=True)
class Engagement:
    level: TradingState
    reason: str  # "breaker tripped by spx_ticks — SPX age 17.2s > 15.0s"


@dataclass(frozen=True)
class Summary:
    trading_state: TradingState
    health: Health
    reason: str
    problems: tuple[str, ...]

    def status_line(self) -> str:
        """One line for `systemctl status`."""
        line = f"{self.trading_state.name}: {self.reason}"
        if self.health is Health.DEGRADED:
            line += " | DEGRADED: " + "; ".join(self.problems)
        return line[:400]


def summarize(
    engaged: Mapping[str, Engagement],
    watchdogs: Mapping[str, tuple[Status, str]],
    problems: list[str],
) -> Summary:
    """`engaged`: actuator -> engagement; `watchdogs`: name -> (status, reason)."""
    trading = max((e.level for e in engaged.values()), default=TradingState.ACTIVE)
    unknown = [
        f"{name} UNKNOWN ({why})" for name, (s, why) in watchdogs.items() if s is Status.UNKNOWN
    ]
    all_problems = tuple(problems + unknown)
    if trading >= TradingState.HALTED:
        health = Health.HALTED
    else:
        health = Health.DEGRADED if all_problems else Health.OK
    return Summary(trading, health, _reason(trading, engaged, watchdogs), all_problems)


def _reason(
    trading: TradingState,
    engaged: Mapping[str, Engagement],
    watchdogs: Mapping[str, tuple[Status, str]],
) -> str:
    if trading is not TradingState.ACTIVE:
        top = [e.reason for e in engaged.values() if e.level == trading]
        return "; ".join(top)
    failing = [
        f"{name} {status.name} — {why}"
        for name, (status, why) in watchdogs.items()
        if status in (Status.WARN, Status.BREACH, Status.CRITICAL)
    ]
    if failing:
        return "; ".join(failing)
    ok = sum(1 for status, _ in watchdogs.values() if status is Status.OK)
    return f"{ok} of {len(watchdogs)} watchdogs OK"

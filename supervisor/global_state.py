"""The supervisor's one global answer, derived from what it knows. Pure.

Trading state = the most restrictive level of any engaged actuator. Health is the
supervisor's own condition: HALTED when trading is halted or flattened, DEGRADED when the
supervisor itself is impaired (its Redis unreachable, its metrics port taken, an action
failing), OK otherwise. A watched source that is down makes its watchdog UNKNOWN, which the
STATUS reason names, but does not make the supervisor unhealthy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from supervisor.model import Health, Status, TradingState

STATUS_MAX_CHARS = 400  # systemd shows STATUS= on one line of `systemctl status`


@dataclass(frozen=True)
class Engagement:
    level: TradingState
    reason: str  # "breaker tripped by spx_ticks — SPX age 17.2s > 15.0s"
    confirmed: bool = True  # False: ordered, the actuator has not confirmed it yet


@dataclass(frozen=True)
class GlobalState:
    trading_state: TradingState
    health: Health
    reason: str
    problems: tuple[str, ...]
    restored: bool = False  # the state was restored at start and has not changed since

    def status_line(self) -> str:
        """One line for `systemctl status`. The supervisor's own problems are shown whatever
        the trading state: HALTED by a fallback flag because the venue's kill switch failed
        must still say that the kill switch failed (positions may still be open). When the
        line is too long, the reason is shortened first: long watchdog reasons must not push
        the supervisor's own ill health off the end."""
        restored = " (restored)" if self.restored else ""
        line = f"{self.trading_state.name}{restored}: {self.reason}"
        degraded = " | DEGRADED: " + "; ".join(self.problems) if self.problems else ""
        room = max(STATUS_MAX_CHARS // 2, STATUS_MAX_CHARS - len(line))  # for the problems
        degraded = clip(degraded, room)
        return clip(line, STATUS_MAX_CHARS - len(degraded)) + degraded


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def derive_global_state(
    engaged: Mapping[str, Engagement],
    watchdogs: Mapping[str, tuple[Status, str]],
    problems: list[str],
    *,
    waiting: int = 0,
    restored: bool = False,
) -> GlobalState:
    """`engaged`: actuator -> engagement; `watchdogs`: name -> (status, reason) of those that
    have run; `waiting`: how many configured watchdogs have not run yet."""
    trading = max((e.level for e in engaged.values()), default=TradingState.ACTIVE)
    if trading >= TradingState.HALTED:
        health = Health.HALTED
    else:
        health = Health.DEGRADED if problems else Health.OK
    reason = _reason(trading, engaged, watchdogs, waiting)
    return GlobalState(trading, health, reason, tuple(problems), restored)


def _reason(
    trading: TradingState,
    engaged: Mapping[str, Engagement],
    watchdogs: Mapping[str, tuple[Status, str]],
    waiting: int,
) -> str:
    if trading is not TradingState.ACTIVE:
        top = [e for e in engaged.values() if e.level == trading]
        if any(e.confirmed for e in top):
            return "; ".join(e.reason for e in top)
        # Only ordered so far (failing, perhaps): say what is confirmed meanwhile (a
        # fallback flag that halted trading while the venue's kill switch fails).
        below = sorted((e for e in engaged.values() if e.confirmed), key=lambda e: -e.level)
        return "; ".join(e.reason for e in (*top, *below))
    ok = sum(1 for status, _ in watchdogs.values() if status is Status.OK)
    not_ok = [
        f"{name} {status.name} — {why}"
        for name, (status, why) in watchdogs.items()
        if status is not Status.OK
    ]
    if waiting:  # "0 of 0 watchdogs OK" at start would read as nothing configured
        total = len(watchdogs) + waiting
        return "; ".join([f"starting: {len(watchdogs)} of {total} watchdogs have run", *not_ok])
    if not_ok and ok == 0:
        return "; ".join(not_ok)
    return "; ".join([f"{ok} of {len(watchdogs)} watchdogs OK", *not_ok])

"""What every actuator is: a named action at a trading-state level, idempotent; and how an
actuator kind (or the deadman, configured beside them) is declared."""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

from supervisor.config.actuator_base import ActuatorBase
from supervisor.config.types import Strict
from supervisor.declarations import Named, Need
from supervisor.errors import ActuatorError
from supervisor.model import Decision, TradingState

if TYPE_CHECKING:  # an annotation only: a kind that reads no PostgreSQL loads no asyncpg
    from supervisor.sources.clients import Clients

A = TypeVar("A", bound=ActuatorBase)


def _nothing() -> None:
    return None


def _ignore(_why: str) -> None:
    return None


@dataclass(frozen=True)
class ActionContext:
    instance_id: str
    now: float
    # Called once the action is on its way (the request written, the process started): the
    # cycle that ordered it holds its own bookkeeping back until then (daemon/cycle.py).
    sent: Callable[[], None] = _nothing
    # Called with what went wrong on each failed attempt of an action that retries (an HTTP
    # kill switch retries for `retry_for`): a failing kill shows at once, not at the deadline.
    attempt_failed: Callable[[str], None] = _ignore


@dataclass(frozen=True)
class Outcome:
    """What an engage call did, for the journal and the audit trail."""

    changed: bool  # the venue's truth: False only when it was engaged before the action
    detail: str = ""
    response_code: int | None = None


class Actuator(abc.ABC):
    config: ActuatorBase  # set by each kind's __init__
    # Its real state is a key in the supervisor's own Redis: a failed read is that Redis'
    # trouble (the daemon's "redis" problem), not a problem of this actuator's store.
    reads_own_redis = False

    def __init__(self, name: str, level: TradingState) -> None:
        self.name = name
        self.level = level

    @property
    def kind(self) -> str:
        """The config's `kind`: the name is written once, in its config class."""
        return self.config.kind

    @abc.abstractmethod
    async def engage(self, decision: Decision, context: ActionContext) -> Outcome:
        """Carry out the action, idempotently. Raises on failure (the caller records it,
        retries, and escalates to the actuator's `on_failure` list)."""

    @abc.abstractmethod
    async def is_engaged(self) -> bool:
        """Read the real state of what this actuator controls. Raises if it cannot."""

    @property
    def on_failure(self) -> tuple[str, ...]:
        """Actuators to engage at once when this one fails or cannot be verified: the
        config's `on_failure`, the one place the daemon's escalation reads it from."""
        return tuple(self.config.on_failure)

    @property
    def max_duration_s(self) -> float:
        """The daemon cuts an engage call off after this (retries included)."""
        return 5.0

    @property
    def readable(self) -> bool:
        """True when is_engaged() reads real state (a breaker key), not this process's memory.
        Only readable actuators are re-engaged when found disengaged without a reset."""
        return True

    @property
    def relatch_on_release(self) -> bool:
        """Found released while latched and without a reset: engage it again (a flushed Redis
        must never re-arm trading). False where the store is the venue's own switch, which
        its operators release at the venue (runbook: the same endpoint, enabled again): that
        is reported, not fought, unless the incident that engaged it is still open."""
        return True

    def note_reset(self) -> None:
        """A manual reset released it: what this process remembers of engaging it is void,
        so the next engage is news (an engagement, not "already engaged")."""
        return None  # a store it reads (a Redis key) already says so

    @property
    def read_timeout_s(self) -> float:
        """How long reading its real state (is_engaged) may take, beyond Redis' own timeout."""
        return 0.0

    @property
    def auto_reset_after_s(self) -> float | None:
        """Release itself this long after engaging, once its watchdog cleared; None: never.
        Only a reduce_only breaker may opt in (checked by its config)."""
        return None

    async def disengage(self, context: ActionContext) -> Outcome:
        """Release it (manual reset only; nothing automatic ever calls this)."""
        raise ActuatorError(f"{self.kind} {self.name!r} cannot be released from here")


@dataclass(frozen=True, kw_only=True)
class ActuatorKind(Named, Generic[A]):
    """An action: engaged by decisions, built once per `[actuators.NAME]`."""

    config: type[A]
    build: Callable[[str, A, Clients], Actuator]  # (name, config, clients)
    needs: frozenset[Need]


@dataclass(frozen=True, kw_only=True)
class DeadmanKind(Named):
    """Configured under [actuators] but not an action (never engaged by a decision, no level),
    so it has no `build` here: build_deadmen() in supervisor/actuators/deadman.py makes them,
    and protection.build leaves them out of the actuators."""

    config: type[Strict]
    needs: frozenset[Need]

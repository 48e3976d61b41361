"""What every watchdog is, how a watchdog kind is declared, and the one safe way to run it.

A watchdog turns values read through a source into one verdict per subject. `evaluate`
applies the session gate and the timeout and turns any failure into UNKNOWN verdicts, so a
broken source degrades that watchdog only, never the daemon.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

import anyio

from supervisor.config.watchdog_base import WatchdogBase
from supervisor.declarations import Named, Need
from supervisor.errors import SourceError
from supervisor.gauges import KindGauge
from supervisor.model import Remedy, Status, Verdict, Verdicts
from supervisor.quantities import format_duration
from supervisor.sessions import Session

if TYPE_CHECKING:  # an annotation only: a kind that reads no PostgreSQL loads no asyncpg
    from supervisor.sources.clients import Clients

log = logging.getLogger(__name__)

W = TypeVar("W", bound=WatchdogBase)


class Watchdog(abc.ABC):
    def __init__(self, config: WatchdogBase) -> None:
        self.config = config
        self.name = config.name

    @property
    def kind(self) -> str:
        """The config's `kind`: the name is written once, in its config class."""
        return self.config.kind

    @property
    @abc.abstractmethod
    def subjects(self) -> list[str]:
        """What this watchdog judges, one verdict each (instruments, keys, queries...)."""

    @abc.abstractmethod
    async def check(self, now: float, session_opened_at: float | None) -> Sequence[Verdict]:
        """Read and judge. May raise; `evaluate` turns exceptions into UNKNOWN."""

    async def recheck(self, now: float, session_opened_at: float | None) -> Sequence[Verdict]:
        """A deadline re-run: the daemon runs the watchdog again because a verdict's
        `deadline` came due. A watchdog that remembers its last verdicts may re-read only
        the subjects that came due and keep the others; by default, a full check."""
        return await self.check(now, session_opened_at)

    def remedies(self) -> list[Remedy]:
        """Repairs the last check proposes; the daemon decides whether to apply them."""
        return []

    def all_subjects(self, status: Status, reason: str) -> Verdicts:
        return Verdicts.uniform(self.name, self.subjects, status, reason)


@dataclass(frozen=True, kw_only=True)
class WatchdogKind(Named, Generic[W]):
    """A watchdog kind, declared as its module's `KIND` (supervisor/declarations.py)."""

    config: type[W]
    build: Callable[[W, Clients], Watchdog]
    needs: frozenset[Need]
    gauge: KindGauge | None = None


@dataclass(frozen=True)
class Evaluation:
    verdicts: Verdicts
    cut_off: bool = False  # the check did not finish within its timeout


async def evaluate(watchdog: Watchdog, session: Session | None, now: float) -> Verdicts:
    """One evaluation's verdicts (for `check` and tests); see `run_check`."""
    return (await run_check(watchdog, session, now)).verdicts


async def run_check(
    watchdog: Watchdog, session: Session | None, now: float, *, deadline_run: bool = False
) -> Evaluation:
    """Check once under the session gate and the timeout; a failure becomes UNKNOWN.
    `deadline_run`: the run was brought forward to a verdict's deadline (`recheck`)."""
    opened_at = None
    if session is not None:
        opened_at = session.opened_at(now)
        if opened_at is None:
            return Evaluation(watchdog.all_subjects(Status.OK, f"session closed ({session.name})"))
    timeout_s = watchdog.config.check_timeout_s
    read = watchdog.recheck if deadline_run else watchdog.check
    try:
        with anyio.fail_after(timeout_s):
            return Evaluation(Verdicts.of(await read(now, opened_at)))
    except TimeoutError:
        reason = f"check timed out after {format_duration(timeout_s)}"
        return Evaluation(watchdog.all_subjects(Status.UNKNOWN, reason), cut_off=True)
    except SourceError as exc:
        return Evaluation(watchdog.all_subjects(Status.UNKNOWN, str(exc)))
    except Exception as exc:  # a bug in one watchdog must not take the daemon down
        log.exception("watchdog=%s check failed unexpectedly", watchdog.name)
        reason = f"internal error: {type(exc).__name__}"
        return Evaluation(watchdog.all_subjects(Status.UNKNOWN, reason))

"""What every actuator is: a named action at a trading-state level, idempotent."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import ClassVar

from supervisor.model import Decision, TradingState


@dataclass(frozen=True)
class ActionContext:
    instance_id: str
    now: float


class Actuator(abc.ABC):
    kind: ClassVar[str]

    def __init__(self, name: str, level: TradingState) -> None:
        self.name = name
        self.level = level

    @abc.abstractmethod
    async def engage(self, decision: Decision, context: ActionContext) -> bool:
        """Carry out the action. True if this call changed something, False if it was
        already engaged. Raises on failure (the caller records and retries)."""

    @abc.abstractmethod
    async def is_engaged(self) -> bool:
        """Read the real state of what this actuator controls. Raises if it cannot."""

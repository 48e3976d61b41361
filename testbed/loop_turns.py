"""Counting the event loop's turns while something runs: a loop held by a blocking call (an
fsync in the loop, say) counts none meanwhile."""

from __future__ import annotations

import asyncio

TURN_S = 0.01  # one turn: a sleep this long, then a count


class LoopTurns:
    """`async with LoopTurns() as turns: ...`; then `turns.count`, and `turns.expected(s)`:
    a quarter of the turns an idle loop makes in `s` seconds (a loaded machine's margin)."""

    def __init__(self) -> None:
        self.count = 0
        self._counting: asyncio.Task[None] | None = None

    async def __aenter__(self) -> LoopTurns:
        self._counting = asyncio.create_task(self._count())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._counting is not None:
            self._counting.cancel()

    @staticmethod
    def expected(seconds: float) -> float:
        return seconds / TURN_S / 4

    async def _count(self) -> None:
        while True:
            await asyncio.sleep(TURN_S)
            self.count += 1

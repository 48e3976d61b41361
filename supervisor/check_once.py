"""`check`: evaluate each watchdog once. Never applies the policy, never acts."""

from __future__ import annotations

from collections.abc import Callable

from supervisor.config.settings import Settings
from supervisor.model import Verdict
from supervisor.protection import build_protection
from supervisor.sources.clients import close_clients, open_clients
from supervisor.watchdogs.base import evaluate


async def evaluate_all(
    settings: Settings, only: set[str], clock: Callable[[], float]
) -> list[Verdict]:
    """Evaluate each watchdog once (in `only`, if given). Never applies policy, never acts."""
    clients = open_clients(
        settings.redis,
        settings.postgres,
        f"trading-supervisor-check:{settings.supervisor.instance_id}",
    )
    try:
        protection = build_protection(settings, clients)
        verdicts: list[Verdict] = []
        for name, watchdog in protection.watchdogs.items():
            if only and name not in only:
                continue
            session = protection.sessions.get(watchdog.config.session or "")
            verdicts.extend(await evaluate(watchdog, session, clock()))
        return verdicts
    finally:
        await close_clients(clients)

"""The fixed sections of the file: [supervisor], [redis], [postgres], [metrics], [ha] and
the session calendars of [sessions.NAME]."""

from __future__ import annotations

import socket
from datetime import date, time
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, Field

from supervisor.config.types import (
    Duration,
    Listen,
    Name,
    Secret,
    Strict,
    Timeout,
    between,
    check_redis_url,
    check_timezone,
    mask_url,
)
from supervisor.sessions import WEEKDAYS, Session


class SupervisorSection(Strict):
    instance_id: Name = Field(default_factory=socket.gethostname)
    namespace: Name = "supervisor"
    dry_run: bool = False
    state_dir: Path = Path("/var/lib/trading-supervisor")


class RedisSection(Strict):
    url: Annotated[str, AfterValidator(check_redis_url)] = "redis://127.0.0.1:6379/0"
    username: str | None = None
    password: Secret | None = None
    timeout_s: Timeout = Field(1.0, alias="timeout")

    @property
    def display_url(self) -> str:
        """The URL with any password in it masked, for logs and `config show`."""
        return mask_url(self.url)


class PostgresSection(Strict):
    dsn: Secret | None = None
    timeout_s: Timeout = Field(2.0, alias="timeout")


class MetricsSection(Strict):
    enabled: bool = True
    listen: Listen = "127.0.0.1:9464"

    @property
    def host_port(self) -> tuple[str, int]:
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]"), int(port)


class HaSection(Strict):
    enabled: bool = False
    # The lease must outlive a missed renewal (renewed every housekeeping cycle, 1 s); longer
    # than 5 minutes is a standby that waits that long to take over from a dead leader.
    lease_ttl_s: Annotated[Duration, between(2.0, 300.0)] = Field(5.0, alias="lease_ttl")


class SessionConfig(Strict):
    timezone: Annotated[str, AfterValidator(check_timezone)]
    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = Field(min_length=1)
    open: time
    close: time
    holidays: list[date] = []

    def build(self, name: str) -> Session:
        return Session(
            name=name,
            timezone=ZoneInfo(self.timezone),
            days=frozenset(WEEKDAYS.index(day) for day in self.days),
            open=self.open,
            close=self.close,
            holidays=frozenset(self.holidays),
        )

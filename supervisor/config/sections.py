"""The fixed sections of the file: [supervisor], [redis], [postgres], [metrics], [ha],
[recorder] and the session calendars of [sessions.NAME]."""

from __future__ import annotations

import re
import socket
from datetime import date, datetime, time
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)

from supervisor.config.sentinel_url import check_sentinel_login
from supervisor.config.types import (
    MAX_DURATION_S,
    POSITIVE_DURATION_PATTERN,
    Duration,
    Listen,
    Name,
    Secret,
    Strict,
    Text,
    Timeout,
    between,
    check_redis_url,
    check_timezone,
    duration_json,
)
from supervisor.secrets import mask_url
from supervisor.sessions import WEEKDAYS, Session

# For the JSON Schema: the schemes check_redis_url takes.
REDIS_URL_PATTERN = r"^(redis|rediss|unix|redis\+sentinel|rediss\+sentinel)://"


def check_state_dir(path: Path) -> Path:
    """Latches are restored from here after a restart: a relative path would depend on the
    working directory ("/" under systemd), and a restart elsewhere would forget them."""
    if not path.is_absolute():
        raise ValueError("must be an absolute path (latches are restored from it)")
    if "\0" in str(path):
        raise ValueError("contains a NUL character")
    return path


class SupervisorSection(Strict):
    instance_id: Name = Field(default_factory=socket.gethostname)
    namespace: Name = "supervisor"
    dry_run: bool = False
    state_dir: Annotated[
        Path,
        AfterValidator(check_state_dir),
        WithJsonSchema({"type": "string", "pattern": "^/"}),  # absolute
    ] = Path("/var/lib/trading-supervisor")
    # Redis TIME this far from the daemon's clock (beyond the reading's uncertainty): DEGRADED
    max_clock_offset_s: Annotated[
        Duration, between(0.01, 60.0), duration_json(POSITIVE_DURATION_PATTERN, 0.01, 60.0)
    ] = Field(0.25, alias="max_clock_offset")


class RedisSection(Strict):
    url: Annotated[
        str,
        AfterValidator(check_redis_url),
        WithJsonSchema({"type": "string", "pattern": REDIS_URL_PATTERN}),
    ] = "redis://127.0.0.1:6379/0"
    username: Text | None = None
    password: Secret | None = None
    timeout_s: Timeout = Field(1.0, alias="timeout")
    sentinel_username: Text | None = None  # the sentinels' own login (redis+sentinel://)
    sentinel_password: Secret | None = None

    @model_validator(mode="after")
    def _sentinel_login_needs_sentinels(self) -> RedisSection:
        check_sentinel_login(self.url, self.sentinel_username, self.sentinel_password)
        return self

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
    # Renewed every third of it, so one missed renewal does not lose it; longer than 5
    # minutes is a standby that waits that long to take over from a dead leader.
    lease_ttl_s: Annotated[
        Duration, between(2.0, 300.0), duration_json(POSITIVE_DURATION_PATTERN, 2.0, 300.0)
    ] = Field(5.0, alias="lease_ttl")
    # With Redis unreachable nobody can hold a lease: every instance then runs the actions
    # that do not need Redis (they only move toward safety). False: none does.
    act_without_lease: bool = True


_SIZE = re.compile(r"^\s*(\d+)\s*(B|KiB|MiB|GiB|KB|MB|GB)?\s*$")
_SIZE_UNITS = {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}
_SIZE_UNITS.update(KB=10**3, MB=10**6, GB=10**9)


def parse_size(value: object) -> object:
    """A byte count: 536870912, or "512MiB" / "500MB" (B, KiB, MiB, GiB, KB, MB, GB)."""
    if isinstance(value, str):
        match = _SIZE.match(value)
        if match is None:
            raise ValueError("a size is a number of bytes or a string like '512MiB' or '2GB'")
        return int(match.group(1)) * _SIZE_UNITS[match.group(2) or "B"]
    return value


SizeText = Annotated[str, StringConstraints(pattern=_SIZE.pattern)]
Size = Annotated[
    int, BeforeValidator(parse_size, json_schema_input_type=SizeText | int), Field(ge=16 << 20)
]


class RecorderSection(Strict):
    """The flight recorder (state_dir/recorder): a ring bounded by size and age. Read at
    start only: a reload that changes it is refused (restart to apply)."""

    enabled: bool = True
    # 1,000 instruments at 1 s take about 35 MB per 6.5-hour trading day (docs/benchmarks.md).
    max_bytes: Size = 2 << 30
    max_age_s: Annotated[Duration, between(3600.0, MAX_DURATION_S)] = Field(
        14 * 86400.0, alias="max_age"
    )


_CLOCK_TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# A holiday outside these years can never cancel a session this daemon will see: it is a
# typo of one that could (2205 for 2025), and the real holiday would be silently watched.
HOLIDAY_YEARS = (2000, 2100)


def parse_clock_time(value: object) -> time:
    """A TOML local time (09:30:00) or "HH:MM" / "HH:MM:SS". Pydantic alone would also take
    a number as seconds after midnight: `open = 930` meant 00:15:30."""
    if isinstance(value, time):
        return value
    if isinstance(value, str) and _CLOCK_TIME.match(value):
        return time.fromisoformat(value)
    raise ValueError("a time of day is a TOML local time (09:30:00) or a string 'HH:MM[:SS]'")


def parse_holiday(value: object) -> date:
    """A TOML date (2026-12-25) or "YYYY-MM-DD", in HOLIDAY_YEARS. Pydantic alone would also
    take a number as epoch seconds: `holidays = [86400]` meant 1970-01-02."""
    if isinstance(value, datetime):  # a subclass of date: refuse it before the next test
        raise ValueError("a holiday is a date, without a time of day")
    if isinstance(value, date):
        day = value
    elif isinstance(value, str) and _ISO_DATE.match(value):
        try:
            day = date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a calendar date") from None
    else:
        raise ValueError("a holiday is a TOML date (2026-12-25) or a string 'YYYY-MM-DD'")
    first, last = HOLIDAY_YEARS
    if not first <= day.year <= last:
        raise ValueError(f"{day.isoformat()} is outside {first}-{last}: a typo?")
    return day


# For the JSON Schema: "HH:MM[:SS]", or a TOML local time as a validator shows it: Python's
# isoformat ("09:30:00", with microseconds if it has them), check-jsonschema's "09:30:00Z".
# A holiday's date in HOLIDAY_YEARS.
CLOCK_TIME_PATTERN = r"^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d+)?Z?)?$"
HOLIDAY_PATTERN = r"^(20\d\d|2100)-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$"
ClockTime = Annotated[
    time,
    BeforeValidator(parse_clock_time),
    WithJsonSchema({"type": "string", "pattern": CLOCK_TIME_PATTERN}),
]
Holiday = Annotated[
    date,
    BeforeValidator(parse_holiday),
    WithJsonSchema({"type": "string", "format": "date", "pattern": HOLIDAY_PATTERN}),
]


class SessionConfig(Strict):
    timezone: Annotated[str, AfterValidator(check_timezone)]
    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = Field(min_length=1)
    open: ClockTime
    close: ClockTime
    holidays: list[Holiday] = []

    def build(self, name: str) -> Session:
        return Session(
            name=name,
            timezone=ZoneInfo(self.timezone),
            days=frozenset(WEEKDAYS.index(day) for day in self.days),
            open=self.open,
            close=self.close,
            holidays=frozenset(self.holidays),
        )

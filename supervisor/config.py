"""The TOML configuration: schema, loading, environment overrides and readable errors.

Durations are converted to seconds here, once (fields named `*_s`, TOML keys without the
suffix). Secrets become SecretStr. Unknown keys are errors. Cross-references (actuator and
session names) are checked here; whether a kind is implemented is checked when components
are built (supervisor/components.py).
"""

from __future__ import annotations

import itertools
import os
import socket
import tomllib
from collections.abc import Mapping
from datetime import date, time
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jmespath
from jmespath.exceptions import JMESPathError
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from supervisor.constants import CONFIG_ENV, CONFIG_PATHS
from supervisor.errors import ConfigError
from supervisor.secrets import resolve_secret
from supervisor.sessions import WEEKDAYS, Session
from supervisor.timestamps import TimestampUnit
from supervisor.units import parse_duration


def _check_jmespath(expression: str) -> str:
    try:
        jmespath.compile(expression)
    except JMESPathError as exc:
        raise ValueError(f"invalid jmespath expression {expression!r}: {exc}") from None
    return expression


def _check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown timezone {name!r}") from None
    return name


def _check_redis_url(url: str) -> str:
    scheme = url.partition("://")[0]
    if scheme == "redis+sentinel":
        raise ValueError(
            "redis+sentinel:// is not supported yet: use redis://, rediss:// or unix://"
        )
    if scheme not in ("redis", "rediss", "unix") or "://" not in url:
        raise ValueError("must start with redis://, rediss:// or unix://")
    return url


Duration = Annotated[float, BeforeValidator(parse_duration)]
Secret = Annotated[SecretStr, BeforeValidator(resolve_secret)]
JmesPath = Annotated[str, AfterValidator(_check_jmespath)]
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")]
Level = Literal["reduce_only", "halted", "flatten"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def mask_url(url: str) -> str:
    """`url` with any password masked: in the userinfo and in a `password=` query parameter."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        netloc = netloc.replace(f":{parts.password}@", ":**********@", 1)
    query = [
        (k, "**********" if k.lower() in ("password", "pass", "pwd") else v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return urlunsplit(parts._replace(netloc=netloc, query=urlencode(query, safe="*")))


# --- sections ------------------------------------------------------------------------------


class SupervisorSection(Strict):
    instance_id: Name = Field(default_factory=socket.gethostname)
    namespace: Name = "supervisor"
    dry_run: bool = False
    state_dir: Path = Path("/var/lib/trading-supervisor")


class RedisSection(Strict):
    url: Annotated[str, AfterValidator(_check_redis_url)] = "redis://127.0.0.1:6379/0"
    username: str | None = None
    password: Secret | None = None
    timeout_s: Duration = Field(1.0, alias="timeout", gt=0)

    @property
    def display_url(self) -> str:
        """The URL with any password in it masked, for logs and `config show`."""
        return mask_url(self.url)


class PostgresSection(Strict):
    dsn: Secret | None = None
    timeout_s: Duration = Field(2.0, alias="timeout", gt=0)


class MetricsSection(Strict):
    enabled: bool = True
    listen: str = Field("127.0.0.1:9464", pattern=r"^[^:]+:\d{1,5}$|^\[[0-9a-fA-F:]+\]:\d{1,5}$")

    @property
    def host_port(self) -> tuple[str, int]:
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]"), int(port)


class HaSection(Strict):
    enabled: bool = False
    lease_ttl_s: Duration = Field(5.0, alias="lease_ttl", gt=0)


class SessionConfig(Strict):
    timezone: Annotated[str, AfterValidator(_check_timezone)]
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


# --- actuators -----------------------------------------------------------------------------


class ActuatorBase(Strict):
    kind: str
    level: Level
    on_failure: list[str] = []  # engaged at once when this one fails or cannot be verified


class RedisBreakerConfig(ActuatorBase):
    kind: Literal["redis_breaker"]
    level: Level = "reduce_only"
    key: str = "circuit_breaker:state"
    history_key: str = "circuit_breaker:history"
    channel: str | None = None  # PUBLISH channel; default: the key
    tripped_value: str = "TRIPPED"
    clear_value: str = "OPEN"
    format: Literal["json", "plain"] = "json"  # plain: the key holds just the state word
    history_max: int = Field(10_000, ge=1)
    # Only a reduce-only breaker may release itself, and only after its watchdog cleared.
    auto_reset_after_s: Duration | None = Field(None, alias="auto_reset_after", gt=0)

    @model_validator(mode="after")
    def _auto_reset_only_reduce_only(self) -> RedisBreakerConfig:
        if self.auto_reset_after_s is not None and self.level != "reduce_only":
            raise ValueError("'auto_reset_after' is allowed only for a reduce_only breaker")
        return self


class RedisFlagConfig(ActuatorBase):
    kind: Literal["redis_flag"]
    key: str
    value: str = "1"


class VerifyConfig(Strict):
    url: str
    expect: JmesPath
    headers: dict[str, Secret] = {}


class HttpActuatorConfig(ActuatorBase):
    kind: Literal["http"]
    method: Literal["POST", "PUT", "PATCH", "DELETE", "GET"] = "POST"
    url: str
    headers: dict[str, Secret] = {}
    json_body: dict[str, Any] | None = Field(None, alias="json")
    idempotency_header: str | None = "Idempotency-Key"
    verify: VerifyConfig | None = None
    timeout_s: Duration = Field(2.0, alias="timeout", gt=0)
    retry_for_s: Duration = Field(60.0, alias="retry_for")

    @model_validator(mode="after")
    def _known_placeholders(self) -> HttpActuatorConfig:
        self.check_placeholders(
            self.json_body, ("reason", "watchdog", "instance_id", "incident_id", "severity")
        )
        return self

    @staticmethod
    def check_placeholders(node: Any, known: tuple[str, ...]) -> None:
        """A `{name}` in a body template that we would not fill is a typo: refuse it here
        rather than send it literally to a kill endpoint. Other braces ("{}", "{ x }") pass."""
        import re  # local: the config module keeps its imports for the shared sections

        found: set[str] = set()
        stack = [node]
        while stack:
            item = stack.pop()
            if isinstance(item, str):
                found.update(re.findall(r"\{([A-Za-z_][A-Za-z0-9_]*)\}", item))
            elif isinstance(item, dict):
                stack.extend(item.values())
            elif isinstance(item, list):
                stack.extend(item)
        unknown = sorted(found - set(known))
        if unknown:
            raise ValueError(
                f"json: unknown placeholder(s) {', '.join('{' + n + '}' for n in unknown)};"
                f" known: {', '.join('{' + n + '}' for n in known)}"
            )


class CommandActuatorConfig(ActuatorBase):
    kind: Literal["command"]
    argv: list[str] = Field(min_length=1)
    timeout_s: Duration = Field(30.0, alias="timeout", gt=0)


class DeadmanConfig(Strict):
    kind: Literal["deadman"]
    method: Literal["POST", "PUT", "GET"] = "POST"
    url: str
    headers: dict[str, Secret] = {}
    json_body: dict[str, Any] | None = Field(None, alias="json")
    timeout_s: Duration = Field(1.0, alias="timeout", gt=0)

    @model_validator(mode="after")
    def _known_placeholders(self) -> DeadmanConfig:
        HttpActuatorConfig.check_placeholders(self.json_body, ("instance_id", "now"))
        return self


ActuatorConfig = Annotated[
    RedisBreakerConfig
    | RedisFlagConfig
    | HttpActuatorConfig
    | CommandActuatorConfig
    | DeadmanConfig,
    Field(discriminator="kind"),
]


# --- watchdogs -----------------------------------------------------------------------------


class WatchdogBase(Strict):
    name: Name
    kind: str
    interval_s: Duration = Field(1.0, alias="interval", gt=0)
    timeout_s: Duration | None = Field(None, alias="timeout", gt=0)
    session: str | None = None
    trip_after: int = Field(1, ge=1)
    clear_after: int = Field(3, ge=1)
    fail_closed: bool = False
    unknown_grace_s: Duration = Field(10.0, alias="unknown_grace")
    on_warn: list[str] = []
    on_breach: list[str] = []
    on_critical: list[str] = []

    @property
    def check_timeout_s(self) -> float:
        """Each check is cut off after this; by default its interval, at most 2 s."""
        return self.timeout_s if self.timeout_s is not None else min(self.interval_s, 2.0)

    def actuator_refs(self) -> dict[str, list[str]]:
        return {
            "on_warn": self.on_warn,
            "on_breach": self.on_breach,
            "on_critical": self.on_critical,
        }


class AgeThresholds(Strict):
    warn_s: Duration | None = Field(None, alias="warn")
    breach_s: Duration = Field(alias="breach", gt=0)
    critical_s: Duration | None = Field(None, alias="critical")

    @model_validator(mode="after")
    def _ordered(self) -> AgeThresholds:
        _check_order(self.warn_s, self.breach_s, self.critical_s, "above")
        return self


class TickFreshnessConfig(WatchdogBase, AgeThresholds):
    kind: Literal["tick_freshness"]
    key: str = Field(min_length=1)
    instruments: list[Annotated[str, Field(min_length=1)]] = Field(min_length=1)
    field: str | None = None  # a hash field
    json_field: JmesPath | None = None  # a field of a JSON value
    stream: bool = False  # the key is a stream: the last entry's id (or its `field`)
    unit: TimestampUnit = "auto"
    max_future_s: Duration = Field(2.0, alias="max_future")

    @model_validator(mode="after")
    def _one_layout(self) -> TickFreshnessConfig:
        if self.field and self.json_field:
            raise ValueError("set at most one of 'field' and 'json_field'")
        if self.stream and self.json_field:
            raise ValueError("'json_field' does not apply to a 'stream'")
        if len(set(self.instruments)) > 1 and "{instrument}" not in self.key:
            raise ValueError("with several instruments, 'key' must contain '{instrument}'")
        return self


class LockTtlConfig(WatchdogBase):
    """See supervisor/watchdogs/lock_ttl.py for what each limit means."""

    kind: Literal["lock_ttl"]
    keys: list[Annotated[str, Field(min_length=1)]] = Field(min_length=1)
    max_ttl_s: Duration | None = Field(None, alias="max_ttl", gt=0)
    max_hold_s: Duration | None = Field(None, alias="max_hold", gt=0)
    # The TTL must be seen counting down (no renewal between two checks) at least this often.
    min_ttl_progress_s: Duration | None = Field(None, alias="min_ttl_progress", gt=0)
    require_owner: list[str] = []
    release_orphans: bool = False  # compare-and-delete a lock with no expiry (audited)

    @model_validator(mode="after")
    def _known_keys(self) -> LockTtlConfig:
        if len(set(self.keys)) != len(self.keys):
            raise ValueError("'keys' lists a key twice")
        unknown = [key for key in self.require_owner if key not in self.keys]
        if unknown:
            raise ValueError(f"'require_owner' names keys not in 'keys': {', '.join(unknown)}")
        return self


class ValueThresholds(Strict):
    warn: float | None = None
    breach: float | None = None
    critical: float | None = None
    direction: Literal["above", "below"] = "above"

    @model_validator(mode="after")
    def _ordered(self) -> ValueThresholds:
        if self.warn is None and self.breach is None and self.critical is None:
            raise ValueError("set at least one of 'warn', 'breach', 'critical'")
        _check_order(self.warn, self.breach, self.critical, self.direction)
        return self


class MarginConfig(WatchdogBase, ValueThresholds):
    """Exactly one source: `url` (HTTP JSON; used/equity/utilization are jmespaths) or
    `redis_key` (a hash; used/equity/utilization name its fields). Either `utilization`, or
    both `used` and `equity` (ratio = used / equity)."""

    kind: Literal["margin"]
    url: str | None = Field(None, pattern=r"^https?://")
    headers: dict[str, Secret] = {}
    redis_key: str | None = Field(None, min_length=1)
    used: str | None = Field(None, min_length=1)
    equity: str | None = Field(None, min_length=1)
    utilization: str | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _one_source_one_formula(self) -> MarginConfig:
        if (self.url is None) == (self.redis_key is None):
            raise ValueError("set exactly one of 'url' (HTTP JSON) and 'redis_key' (a hash)")
        if self.headers and self.url is None:
            raise ValueError("'headers' apply only to 'url'")
        has_pair = self.used is not None and self.equity is not None
        has_any_part = self.used is not None or self.equity is not None
        if (self.utilization is not None) == has_any_part or (has_any_part and not has_pair):
            raise ValueError("set either 'utilization', or both 'used' and 'equity'")
        if self.direction != "above":
            raise ValueError("margin utilization gets worse as it grows: 'direction' is 'above'")
        if self.url is not None:
            for name in ("used", "equity", "utilization"):
                expression = getattr(self, name)
                if expression is not None:
                    try:
                        _check_jmespath(expression)
                    except ValueError as exc:
                        raise ValueError(f"{name}: {exc}") from None
        return self


class PoisonQueueConfig(WatchdogBase, ValueThresholds):
    kind: Literal["poison_queue"]
    query: str = Field(min_length=1)  # a count of poison rows: `count > warn` warns
    oldest_query: str | None = Field(None, min_length=1)  # the oldest row's timestamp, or NULL
    oldest_warn_s: Duration | None = Field(None, alias="oldest_warn")
    oldest_breach_s: Duration | None = Field(None, alias="oldest_breach")
    oldest_critical_s: Duration | None = Field(None, alias="oldest_critical")

    @model_validator(mode="after")
    def _poison_rules(self) -> PoisonQueueConfig:
        if self.direction != "above":
            raise ValueError("a poison queue gets worse as it grows: 'direction' must be 'above'")
        oldest = (self.oldest_warn_s, self.oldest_breach_s, self.oldest_critical_s)
        if self.oldest_query is None and any(t is not None for t in oldest):
            raise ValueError("'oldest_warn/breach/critical' need an 'oldest_query'")
        try:
            _check_order(*oldest, "above")
        except ValueError as exc:
            raise ValueError(f"oldest thresholds: {exc}") from None
        return self


class CbStalenessConfig(WatchdogBase, AgeThresholds):
    """The breaker's last update: exactly one of `json_field` (of the key's JSON value),
    `field` (of the key's hash) or `timestamp_key` (a separate key holding the timestamp)."""

    kind: Literal["cb_staleness"]
    key: str = Field(min_length=1)
    field: str | None = Field(None, min_length=1)
    json_field: JmesPath | None = None
    timestamp_key: str | None = Field(None, min_length=1)
    unit: TimestampUnit = "auto"
    warn_s: Duration | None = Field(5.0, alias="warn")  # the runbook's SLA: <= 5 s
    breach_s: Duration = Field(10.0, alias="breach", gt=0)  # page above 10 s
    max_future_s: Duration = Field(2.0, alias="max_future")
    fail_closed: bool = True

    @model_validator(mode="after")
    def _one_layout(self) -> CbStalenessConfig:
        layouts = [self.field, self.json_field, self.timestamp_key]
        if sum(layout is not None for layout in layouts) != 1:
            raise ValueError("set exactly one of 'json_field', 'field' and 'timestamp_key'")
        return self


class HttpHealthConfig(WatchdogBase):
    kind: Literal["http_health"]
    url: str = Field(pattern=r"^https?://")
    headers: dict[str, Secret] = {}
    expect_status: list[Annotated[int, Field(ge=100, le=599)]] = Field([200], min_length=1)
    max_latency_s: Duration | None = Field(None, alias="max_latency", gt=0)
    expect: JmesPath | None = None  # must evaluate to boolean true, e.g. "ok == `true`"


class RedisValueConfig(WatchdogBase, ValueThresholds):
    kind: Literal["redis_value"]
    key: str = Field(min_length=1)
    field: str | None = Field(None, min_length=1)  # a hash field
    json_field: JmesPath | None = None  # a field of a JSON value
    unit: str = Field("", max_length=16)  # shown with the value ("s", "ratio", "orders"...)

    @model_validator(mode="after")
    def _one_layout(self) -> RedisValueConfig:
        if self.field is not None and self.json_field is not None:
            raise ValueError("set at most one of 'field' and 'json_field'")
        return self


class SqlValueConfig(WatchdogBase, ValueThresholds):
    kind: Literal["sql_value"]
    query: str = Field(min_length=1)  # the first column of the first row is the value
    label: str | None = Field(None, min_length=1, max_length=64)  # the subject; default: name
    unit: str = Field("", max_length=16)  # shown with the value ("s", "ratio", "orders"...)


class HttpValueConfig(WatchdogBase, ValueThresholds):
    kind: Literal["http_value"]
    url: str = Field(pattern=r"^https?://")
    headers: dict[str, Secret] = {}
    path: JmesPath  # where the number is in the JSON answer
    label: str | None = Field(None, min_length=1, max_length=64)  # the subject; default: path
    unit: str = Field("", max_length=16)  # shown with the value ("s", "ratio", "orders"...)


class PrometheusQueryConfig(WatchdogBase, ValueThresholds):
    kind: Literal["prometheus_query"]
    url: str = Field("http://127.0.0.1:9090", pattern=r"^https?://")  # Prometheus base URL
    query: str = Field(min_length=1)  # an instant query: a vector (one verdict per series)
    headers: dict[str, Secret] = {}
    unit: str = Field("", max_length=16)  # shown with the value ("s", "ratio", "ticks/s"...)


WatchdogConfig = Annotated[
    TickFreshnessConfig
    | LockTtlConfig
    | MarginConfig
    | PoisonQueueConfig
    | CbStalenessConfig
    | HttpHealthConfig
    | RedisValueConfig
    | SqlValueConfig
    | HttpValueConfig
    | PrometheusQueryConfig,
    Field(discriminator="kind"),
]


def _check_order(warn: float | None, breach: float | None, crit: float | None, way: str) -> None:
    levels = [
        (n, v) for n, v in (("warn", warn), ("breach", breach), ("critical", crit)) if v is not None
    ]
    for (low_name, low), (high_name, high) in itertools.pairwise(levels):
        if (way == "above" and low >= high) or (way == "below" and low <= high):
            word = "below" if way == "above" else "above"
            raise ValueError(f"'{low_name}' ({low:g}) must be {word} '{high_name}' ({high:g})")


# --- the whole file ------------------------------------------------------------------------


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SUPERVISOR_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    supervisor: SupervisorSection = SupervisorSection()
    redis: RedisSection = RedisSection()
    postgres: PostgresSection = PostgresSection()
    metrics: MetricsSection = MetricsSection()
    ha: HaSection = HaSection()
    sessions: dict[Name, SessionConfig] = {}
    actuators: dict[Name, ActuatorConfig] = {}
    watchdogs: list[WatchdogConfig] = []

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The TOML file arrives as init kwargs; SUPERVISOR_<SECTION>__<KEY> overrides it.
        return env_settings, init_settings

    @model_validator(mode="after")
    def _references(self) -> Settings:
        names = [w.name for w in self.watchdogs]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"watchdog names must be unique; repeated: {', '.join(duplicates)}")
        for index, watchdog in enumerate(self.watchdogs):
            _check_watchdog_refs(index, watchdog, self)
        for name, actuator in self.actuators.items():
            for ref in getattr(actuator, "on_failure", []):  # a deadman has none
                if ref not in self.actuators or ref == name:
                    problem = f"no other actuator named {ref!r}"
                    raise ValueError(f"actuators.{name}.on_failure: {problem}")
        return self


def _check_watchdog_refs(index: int, watchdog: WatchdogBase, settings: Settings) -> None:
    where = f"watchdogs[{index}] ({watchdog.name})"
    if watchdog.session and watchdog.session not in settings.sessions:
        raise ValueError(f"{where}.session: no session named {watchdog.session!r}")
    for field_name, refs in watchdog.actuator_refs().items():
        for ref in refs:
            actuator = settings.actuators.get(ref)
            if actuator is None:
                raise ValueError(f"{where}.{field_name}: no actuator named {ref!r}")
            if isinstance(actuator, DeadmanConfig):
                raise ValueError(f"{where}.{field_name}: {ref!r} is a deadman, not an action")


# --- loading -------------------------------------------------------------------------------


def find_config(explicit: str | None) -> Path:
    """--config, then $SUPERVISOR_CONFIG, then the system path, then ./config/."""
    if explicit:
        return Path(explicit)
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV])
    for candidate in CONFIG_PATHS:
        if Path(candidate).is_file():
            return Path(candidate)
    return Path(CONFIG_PATHS[0])


def load_config(path: Path) -> Settings:
    """Read, parse and validate; every problem becomes a ConfigError naming its field."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError([f"cannot read config file: {exc.strerror}"], str(path)) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError([f"not valid TOML: {exc}"], str(path)) from None
    problems = unknown_environment_overrides(os.environ)
    if problems:
        raise ConfigError(problems, str(path))
    try:
        return Settings(**data)
    except ValidationError as exc:
        raise ConfigError(describe_errors(exc, data), str(path)) from None
    except SettingsError as exc:  # an environment override that is not valid JSON
        raise ConfigError([f"environment: {exc}"], str(path)) from None


def unknown_environment_overrides(environ: Mapping[str, str]) -> list[str]:
    """A mistyped override (SUPERVISOR_SUPERVISOR_DRY_RUN) must not be silently ignored."""
    sections = set(Settings.model_fields)
    problems = []
    for name in sorted(environ):
        if not name.startswith("SUPERVISOR_") or name == CONFIG_ENV:
            continue
        section = name.removeprefix("SUPERVISOR_").split("__", 1)[0].lower()
        if section not in sections:
            problems.append(
                f"environment {name}: not a setting; use SUPERVISOR_<SECTION>__<KEY> with a"
                f" section among {', '.join(sorted(sections))}"
            )
    return problems


def describe_errors(exc: ValidationError, data: dict[str, Any] | None = None) -> list[str]:
    """One line per problem, "field.path: message"; never the offending value (may be secret)."""
    lines = []
    for error in exc.errors(include_input=False, include_url=False):
        path = _field_path(error["loc"], data or {})
        message = error["msg"].removeprefix("Value error, ")
        lines.append(f"{path}: {message}" if path else message)
    return lines


def _field_path(loc: tuple[int | str, ...], data: dict[str, Any]) -> str:
    """("watchdogs", 1, "tick_freshness", "breach") -> "watchdogs[1] (spx_ticks).breach"."""
    parts = list(loc)
    if len(parts) > 2 and parts[0] in ("watchdogs", "actuators"):
        del parts[2]  # pydantic's discriminator tag: not a key the user wrote
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    if len(parts) > 1 and parts[0] == "watchdogs" and isinstance(parts[1], int):
        name = _watchdog_name(data, parts[1])
        path = path.replace(f"[{parts[1]}]", f"[{parts[1]}] ({name})", 1) if name else path
    return path


def _watchdog_name(data: dict[str, Any], index: int) -> str | None:
    watchdogs = data.get("watchdogs")
    if (
        isinstance(watchdogs, list)
        and index < len(watchdogs)
        and isinstance(watchdogs[index], dict)
    ):
        name = watchdogs[index].get("name")
        return name if isinstance(name, str) else None
    return None


def redacted(settings: Settings) -> dict[str, Any]:
    """The effective config as plain data, secrets masked, for `config show`."""
    data: dict[str, Any] = _mask_urls(settings.model_dump(mode="json", by_alias=True))
    return data


def _mask_urls(node: Any) -> Any:
    """Every `url` anywhere in the config may carry credentials: mask them all."""
    if isinstance(node, dict):
        return {
            k: mask_url(v) if k == "url" and isinstance(v, str) else _mask_urls(v)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_mask_urls(item) for item in node]
    return node

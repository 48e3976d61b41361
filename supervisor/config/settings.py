"""The whole file as one model: its sections, sessions, actuators and watchdogs, and the
cross-references between them (actuator and session names), checked once everything is read.

SUPERVISOR_<SECTION>__<KEY> environment variables override the file. Which kinds may appear
under [[watchdogs]] and [actuators] is supervisor/kinds.py's list.
"""

from __future__ import annotations

from pydantic import model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from supervisor.config.actuator_base import ActuatorBase
from supervisor.config.sections import (
    HaSection,
    MetricsSection,
    PostgresSection,
    RecorderSection,
    RedisSection,
    SessionConfig,
    SupervisorSection,
)
from supervisor.config.types import Name
from supervisor.config.watchdog_base import WatchdogBase
from supervisor.kinds import DEADMAN_KIND, ActuatorConfig, WatchdogConfig

NO_WATCHDOGS = "no watchdogs configured: a supervisor that watches nothing protects nothing"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SUPERVISOR_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    supervisor: SupervisorSection = SupervisorSection()
    redis: RedisSection = RedisSection()
    postgres: PostgresSection = PostgresSection()
    metrics: MetricsSection = MetricsSection()
    ha: HaSection = HaSection()
    recorder: RecorderSection = RecorderSection()
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
    def _watches_something(self) -> Settings:
        # An empty file (or one whose [[watchdogs]] were lost in an edit) validated and
        # `check` said OK: a daemon that looks healthy and protects nothing.
        if not self.watchdogs:
            raise ValueError(NO_WATCHDOGS)
        return self

    @model_validator(mode="after")
    def _references(self) -> Settings:
        names = [w.name for w in self.watchdogs]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"watchdog names must be unique; repeated: {', '.join(duplicates)}")
        for index, watchdog in enumerate(self.watchdogs):
            _check_watchdog_refs(index, watchdog, self)
        for name, actuator in self.actuators.items():
            if isinstance(actuator, ActuatorBase):  # a deadman is not an action: no on_failure
                _check_escalation_refs(name, actuator, self)
        return self


def _check_escalation_refs(name: str, actuator: ActuatorBase, settings: Settings) -> None:
    for ref in actuator.on_failure:
        target = settings.actuators.get(ref)
        if target is None or ref == name:
            raise ValueError(f"actuators.{name}.on_failure: no other actuator named {ref!r}")
        if isinstance(target, DEADMAN_KIND.config):
            raise ValueError(f"actuators.{name}.on_failure: {ref!r} is a deadman, not an action")


def _check_watchdog_refs(index: int, watchdog: WatchdogBase, settings: Settings) -> None:
    where = f"watchdogs[{index}] ({watchdog.name})"
    if watchdog.session and watchdog.session not in settings.sessions:
        raise ValueError(f"{where}.session: no session named {watchdog.session!r}")
    for field_name, refs in watchdog.actuator_refs().items():
        for ref in refs:
            actuator = settings.actuators.get(ref)
            if actuator is None:
                raise ValueError(f"{where}.{field_name}: no actuator named {ref!r}")
            if isinstance(actuator, DEADMAN_KIND.config):
                raise ValueError(f"{where}.{field_name}: {ref!r} is a deadman, not an action")

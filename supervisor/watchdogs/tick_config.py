"""tick_freshness's config class, in a module of its own: the kind (tick_freshness) and the
judgement it delegates to (tick_parse, tick_judge) all read it, and neither may import the
other's module back."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from supervisor.config.types import Duration, JmesPath, Text
from supervisor.config.watchdog_base import AgeThresholds, WatchdogBase
from supervisor.timestamps import TimestampUnit


class TickFreshnessConfig(WatchdogBase, AgeThresholds):
    kind: Literal["tick_freshness"]
    key: Text
    instruments: list[Text] = Field(min_length=1, json_schema_extra={"uniqueItems": True})
    field: Text | None = None  # a hash field
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
        if len(set(self.instruments)) != len(self.instruments):
            raise ValueError("'instruments' lists an instrument twice")
        if len(self.instruments) > 1 and "{instrument}" not in self.key:
            raise ValueError("with several instruments, 'key' must contain '{instrument}'")
        return self

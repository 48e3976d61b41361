"""Every kind this version runs, listed once. Nothing registers a kind any other way (no entry
points, no scanning): a kind module's `KIND` counts only once it is listed here.

From these lists come the config unions Settings validates `[[watchdogs]]` and `[actuators]`
against, the builders protection.build uses, the needs `config validate` checks, and the
kind gauges Metrics registers. The order shows in one place: a config naming an unknown kind
is told the expected ones in this order.
"""

from __future__ import annotations

import functools
import operator
from typing import TYPE_CHECKING, Annotated, Any, TypeAlias

from pydantic import Field

from supervisor.actuators import command, deadman, http, redis_breaker, redis_flag
from supervisor.actuators.base import ActuatorKind, DeadmanKind
from supervisor.gauges import KindGauge
from supervisor.watchdogs import (
    cb_staleness,
    http_health,
    http_value,
    lock_ttl,
    margin,
    poison_queue,
    prometheus_query,
    redis_value,
    sql_value,
    tick_freshness,
)
from supervisor.watchdogs.base import WatchdogKind

WATCHDOG_KINDS: tuple[WatchdogKind[Any], ...] = (
    tick_freshness.KIND,
    lock_ttl.KIND,
    margin.KIND,
    poison_queue.KIND,
    cb_staleness.KIND,
    http_health.KIND,
    redis_value.KIND,
    sql_value.KIND,
    http_value.KIND,
    prometheus_query.KIND,
)
ACTUATOR_KINDS: tuple[ActuatorKind[Any], ...] = (  # the actions
    redis_breaker.KIND,
    redis_flag.KIND,
    http.KIND,
    command.KIND,
)
DEADMAN_KIND: DeadmanKind = deadman.KIND  # under [actuators] too, but not an action

_WATCHDOGS = {kind.name: kind for kind in WATCHDOG_KINDS}
_ACTUATORS = {kind.name: kind for kind in ACTUATOR_KINDS}


def watchdog_kind(name: str) -> WatchdogKind[Any]:
    """The declaration of a watchdog kind; validated settings only hold registered ones."""
    return _WATCHDOGS[name]


def actuator_kind(name: str) -> ActuatorKind[Any]:
    """The declaration of an action kind (not the deadman: see DEADMAN_KIND)."""
    return _ACTUATORS[name]


def kind_gauges() -> dict[str, KindGauge]:
    """Watchdog kind name -> its own value gauge, for the kinds that have one."""
    return {kind.name: kind.gauge for kind in WATCHDOG_KINDS if kind.gauge is not None}


if TYPE_CHECKING:
    # mypy cannot follow a union built at run time from the lists above. Statically, every
    # member is a WatchdogBase (or an ActuatorBase, or the DeadmanConfig), which is all that
    # code reading Settings relies on; it narrows with isinstance to reach one kind's fields.
    from supervisor.actuators.deadman import DeadmanConfig
    from supervisor.config.actuator_base import ActuatorBase
    from supervisor.config.watchdog_base import WatchdogBase

    WatchdogConfig: TypeAlias = WatchdogBase
    ActuatorConfig: TypeAlias = ActuatorBase | DeadmanConfig
else:
    # `A | B | ...` over the registered config classes, as if written out; pydantic picks the
    # member by its `kind` tag.
    WatchdogConfig = Annotated[
        functools.reduce(operator.or_, (kind.config for kind in WATCHDOG_KINDS)),
        Field(discriminator="kind"),
    ]
    ActuatorConfig = Annotated[
        functools.reduce(
            operator.or_, (*(kind.config for kind in ACTUATOR_KINDS), DEADMAN_KIND.config)
        ),
        Field(discriminator="kind"),
    ]

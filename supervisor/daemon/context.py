"""What every part of the daemon shares: state, no behaviour.

The assembly (everything built from the config) is replaced whole by a reload; the runtime
(what was learned) survives it. Work started in the background goes through `tasks`, so the
two-phase shutdown can wait for it. What is done with that state lives with the part that
owns it: display.py derives the global answer and shows it (metrics, STATUS), publishing.py
writes to Redis, auditing.py writes the audit trail, engagements.py keeps latches and orders.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
from redis.exceptions import RedisError

from supervisor.daemon.assembly import Assembly
from supervisor.daemon.runtime import Runtime
from supervisor.daemon.tasks import Tasks
from supervisor.errors import SupervisorError
from supervisor.ha.leadership import Leadership
from supervisor.publish.metrics import Metrics
from supervisor.publish.systemd import Notifier
from supervisor.recorder.writer import start_recorder

# What talking to Redis may raise when Redis, or the way to it, is in trouble. Anything else
# is a bug and is logged with its traceback.
REDIS_TROUBLE = (RedisError, OSError, TimeoutError)
# ...and what an actuator's store or endpoint may raise (ActuatorError is a SupervisorError).
ACTUATOR_TROUBLE = (*REDIS_TROUBLE, httpx.HTTPError, SupervisorError)


class Context:
    def __init__(
        self,
        assembly: Assembly,
        metrics: Metrics,
        notifier: Notifier,
        clock: Callable[[], float],
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.assembly = assembly
        self.metrics = metrics
        self.notifier = notifier
        self.clock = clock
        self.monotonic = monotonic  # the lease's clock: never stepped, never another host's
        self.started_at = clock()
        self.runtime = Runtime(trading_since=self.started_at)
        self.recorder = start_recorder(assembly.settings, metrics)
        ha = assembly.settings.ha
        self.leadership = Leadership(
            assembly.instance_id, ha.enabled, ha.lease_ttl_s, ha.act_without_lease
        )
        self.tasks = Tasks()

    def leads(self) -> bool:
        """Holds a lease that cannot have expired yet (always, with [ha] off)."""
        return self.leadership.leads(self.monotonic())

    def may_act(self) -> bool:
        """May run automatic actions: it leads, or nobody can (act_without_lease)."""
        return self.leadership.may_act(self.monotonic())

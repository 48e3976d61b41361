"""Prometheus metrics on their own registry, served on metrics.listen (127.0.0.1 by default).

prometheus_client serves scrapes from a thread, so a good scrape proves nothing about the
event loop: `supervisor_heartbeat_timestamp_seconds` is set by the loop's housekeeping job,
and alerting on its age catches a wedged loop behind a healthy-looking endpoint.

The per-subject series (`supervisor_watchdog_value`, the kinds' own gauges such as the tick
age, declared with each kind and passed in: this module does not import the kinds) are made
at scrape time from each watchdog's last run, as its `subject_metrics` says
(supervisor/publish/subject_metrics.py). The aggregates are set every run: subjects by
status and the largest value.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from supervisor import __version__
from supervisor.gauges import KindGauge
from supervisor.model import Health, Status, TradingState, WatchdogRun
from supervisor.publish.subject_metrics import SubjectSeries
from supervisor.stored import SIGHTINGS, STORES

if TYPE_CHECKING:
    from supervisor.latch import Latch

log = logging.getLogger(__name__)


class Metrics:
    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        kind_gauges: Mapping[str, KindGauge],  # supervisor.kinds.kind_gauges()
    ) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.trading_state = Gauge(
            "supervisor_trading_state",
            "0 ACTIVE, 1 REDUCE_ONLY, 2 HALTED, 3 FLATTEN.",
            registry=r,
        )
        self.health_state = Gauge(
            "supervisor_health_state", "0 OK, 1 DEGRADED, 2 HALTED.", registry=r
        )
        self.watchdog_status = Gauge(
            "supervisor_watchdog_status",
            "0 OK, 1 WARN, 2 BREACH, 3 CRITICAL, 4 UNKNOWN.",
            ["watchdog"],
            registry=r,
        )
        self.watchdog_confirmed = Gauge(
            "supervisor_watchdog_confirmed_status",
            "The highest severity the watchdog's open incident has confirmed (trip_after runs in"
            " a row): 0 none, 1 WARN, 2 BREACH, 3 CRITICAL; held until clear_after OK runs"
            " end the incident.",
            ["watchdog"],
            registry=r,
        )
        self.subjects = Gauge(
            "supervisor_watchdog_subjects",
            "Subjects by status at the last run (every subject, whatever subject_metrics says).",
            ["watchdog", "status"],
            registry=r,
        )
        self.value_max = Gauge(
            "supervisor_watchdog_value_max",
            "The largest value of any subject at the last run (the oldest tick...); NaN if none.",
            ["watchdog"],
            registry=r,
        )
        self.last_run = Gauge(
            "supervisor_watchdog_last_run_timestamp_seconds",
            "When each watchdog last ran.",
            ["watchdog"],
            registry=r,
        )
        self.duration = Histogram(
            "supervisor_watchdog_duration_seconds",
            "How long each check took.",
            ["watchdog"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=r,
        )
        self.breaker_tripped = Gauge(
            "supervisor_breaker_tripped", "1 while any breaker actuator is tripped.", registry=r
        )
        self.kill_switch_engaged = Gauge(
            "supervisor_kill_switch_engaged",
            "1 while any halted/flatten actuator is engaged.",
            registry=r,
        )
        self.decision_unconfirmed = Gauge(
            "supervisor_decision_unconfirmed",
            "Actuators ordered by a decision and not yet confirmed engaged (counted in"
            " supervisor_trading_state at once).",
            registry=r,
        )
        self.action_failing = Gauge(
            "supervisor_action_failing",
            "1 from an action's first failed attempt until it is confirmed (or reset).",
            ["actuator"],
            registry=r,
        )
        self.reset_waiting = Gauge(
            "supervisor_reset_waiting_for_venue",
            "1 between a manual reset and its venue's store reading released.",
            ["actuator"],
            registry=r,
        )
        self.actions = Counter(
            "supervisor_actions",
            "Actions by actuator and outcome.",
            ["actuator", "outcome"],
            registry=r,
        )
        self.check_cut_offs = Counter(
            "supervisor_watchdog_check_cut_offs",
            "Checks cut off by their timeout (all subjects UNKNOWN): the watchdog cannot keep up.",
            ["watchdog"],
            registry=r,
        )
        self.scheduler_events = Counter(
            "supervisor_scheduler_events",
            "Scheduler trouble: job errors, missed runs, runs skipped for max_instances.",
            ["event"],
            registry=r,
        )
        self.heartbeat = Gauge(
            "supervisor_heartbeat_timestamp_seconds",
            "Set by the event loop every housekeeping cycle; stale means a wedged loop.",
            registry=r,
        )
        self.audit_outbox_events = Gauge(
            "supervisor_audit_outbox_events",
            "Audit events waiting in the local outbox for Postgres.",
            registry=r,
        )
        self.actuator_engaged = Gauge(
            "supervisor_actuator_engaged",
            "1 per latched actuator, at its level, with the watchdog whose incident engaged it"
            " (empty: manual or restored); a reset removes the series.",
            ["actuator", "level", "watchdog"],
            registry=r,
        )
        self._latch_series: set[tuple[str, str, str]] = set()
        self.audit_postgres_enabled = Gauge(
            "supervisor_audit_postgres_enabled",
            "1 when [postgres] dsn is set: the audit outbox is meant to drain into Postgres.",
            registry=r,
        )
        self.build_info = Gauge(
            "supervisor_build_info", "Build information.", ["version"], registry=r
        )
        self.build_info.labels(version=__version__).set(1)
        self.is_leader = Gauge(
            "supervisor_is_leader",
            "1 while this instance holds the leader lease (always 1 with [ha] off). Summed over"
            " the instances: 0 is no leader, 2 is two leaders.",
            registry=r,
        )
        self.is_leader.set(1)
        self.ha_enabled = Gauge(
            "supervisor_ha_enabled",
            "1 when [ha] is on: this instance takes part in leader election (the alerts on"
            " leaders count only these).",
            registry=r,
        )
        self.instance_id_conflict = Gauge(
            "supervisor_instance_id_conflict",
            "1 while another process holds this instance's instance_id (with [ha] on): this one"
            " acts on nothing until the ids differ.",
            registry=r,
        )
        self.fencing_token = Gauge(
            "supervisor_leader_fencing_token",
            "The fencing token of this instance's lease while it leads; 0 otherwise.",
            registry=r,
        )
        self.clock_offset = Gauge(
            "supervisor_clock_offset_seconds",
            "Redis TIME minus this daemon's clock (positive: Redis ahead), round-trip corrected,"
            " from the fastest reading of the last 30 s; NaN while Redis TIME is not read.",
            registry=r,
        )
        self.clock_offset.set(math.nan)
        self.clock_offset_uncertainty = Gauge(
            "supervisor_clock_offset_uncertainty_seconds",
            "Half the round trip of the reading behind supervisor_clock_offset_seconds.",
            registry=r,
        )
        self.clock_offset_uncertainty.set(math.nan)
        self.clock_offset_max = Gauge(
            "supervisor_clock_offset_max_seconds",
            "[supervisor] max_clock_offset: beyond it (less the uncertainty) health is DEGRADED.",
            registry=r,
        )
        self.clock_unbelieved = Gauge(
            "supervisor_clock_unbelieved_step_seconds",
            "The system clock minus this daemon's clock: a step not (yet) believed, 0 otherwise.",
            registry=r,
        )
        self.step_failures = Counter(
            "supervisor_pass_step_failures",
            "Steps of a housekeeping pass or a takeover that failed on a bug (the rest of the"
            " pass went on; the journal has the traceback).",
            ["step"],
            registry=r,
        )
        r.register(UnreadableEntries())
        self.kind_gauges = dict(kind_gauges)
        self.subject_series = SubjectSeries(kind_gauges)
        r.register(self.subject_series)
        self._server: Any = None
        self._actuators: set[str] = set()  # with an action_failing and reset_waiting series

    def serve(self, host: str, port: int) -> None:
        self._server, _thread = start_http_server(port, addr=host, registry=self.registry)
        log.info("metrics listening on http://%s:%d/metrics", host, port)

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def prepare(self, watchdogs: Iterable[str], actuators: Iterable[str]) -> None:
        """Create the failure counters of every configured watchdog and actuator at 0.

        `increase()` needs a sample before the first failure: a counter series that first
        appears at 1 shows no increase, and the alert on it would miss a one-off failure.
        """
        for watchdog in watchdogs:
            self.check_cut_offs.labels(watchdog)
        for actuator in actuators:
            self.actions.labels(actuator, "failed")
            self._actuators.add(actuator)
            self.action_failing.labels(actuator).set(0)
            self.reset_waiting.labels(actuator).set(0)

    def observe_run(self, kind: str, run: WatchdogRun, subject_metrics: str = "auto") -> None:
        verdicts = run.verdicts
        self.watchdog_status.labels(run.watchdog).set(run.status)
        self.last_run.labels(run.watchdog).set(run.started_at)
        self.duration.labels(run.watchdog).observe(run.duration_s)
        for status in Status:
            self.subjects.labels(run.watchdog, status.name).set(verdicts.counts[status])
        top = verdicts.max_value
        self.value_max.labels(run.watchdog).set(math.nan if top is None else top)
        self.subject_series.observe(run.watchdog, kind, verdicts, subject_metrics)

    def forget_watchdogs(self, names: list[str]) -> None:
        """Drop the series of watchdogs a reload removed: a gone watchdog is not "stuck"."""
        per_watchdog = [self.watchdog_status, self.last_run, self.duration, self.check_cut_offs]
        per_watchdog.append(self.watchdog_confirmed)
        per_watchdog += [self.subjects, self.value_max]
        for name in names:
            self.subject_series.forget(name)  # its subjects, in every gauge
            for metric in per_watchdog:
                metric.remove_by_labels({"watchdog": name})

    def observe_confirmed(self, watchdog: str, status: Status) -> None:
        self.watchdog_confirmed.labels(watchdog).set(status)

    def observe_latches(self, latches: Mapping[str, Latch]) -> None:
        """One series per latch; a released one loses its series. Removed and added one by
        one (never clear()): a scrape in between must not see every latch gone."""
        wanted = {(name, latch.level.name, latch.watchdog) for name, latch in latches.items()}
        for labels in self._latch_series - wanted:
            self.actuator_engaged.remove(*labels)
        for labels in wanted:
            self.actuator_engaged.labels(*labels).set(1)
        self._latch_series = wanted

    def observe_state(
        self, trading: TradingState, health: Health, breaker: bool, kill: bool
    ) -> None:
        self.trading_state.set(trading)
        self.health_state.set(health)
        self.breaker_tripped.set(int(breaker))
        self.kill_switch_engaged.set(int(kill))

    def observe_actions(self, ordered: Mapping[str, str], releasing: Iterable[str]) -> None:
        """`ordered`: actuator -> its last failed attempt ("" while none failed), for the
        actions not yet confirmed; `releasing`: actuators whose reset waits for the venue."""
        self.decision_unconfirmed.set(len(ordered))
        waiting = set(releasing)
        self._actuators |= set(ordered) | waiting
        for name in self._actuators:
            self.action_failing.labels(name).set(1 if ordered.get(name) else 0)
            self.reset_waiting.labels(name).set(1 if name in waiting else 0)


class UnreadableEntries(Collector):
    """`supervisor_unreadable_entries_total{store}`: stored entries found unreadable (each
    counted once), read at scrape time from the process-wide tally (supervisor/stored.py).
    Every store has a series from the start, so that `increase()` sees the first one."""

    def collect(self) -> Iterable[CounterMetricFamily]:
        family = CounterMetricFamily(
            "supervisor_unreadable_entries",
            "Entries of the supervisor's own Redis keys and state files that could not be read"
            " back (said once in the journal, set aside under {ns}:unreadable:... or renamed).",
            labels=["store"],
        )
        counts = SIGHTINGS.counts()
        for store in STORES:
            family.add_metric([store], counts.get(store, 0))
        other = sum(n for store, n in counts.items() if store not in STORES)
        if other:
            family.add_metric(["other"], other)
        yield family

"""Prometheus metrics on their own registry, served on metrics.listen (127.0.0.1 by default).

prometheus_client serves scrapes from a thread, so a good scrape proves nothing about the
event loop: `supervisor_heartbeat_timestamp_seconds` is set by the loop's housekeeping job,
and alerting on its age catches a wedged loop behind a healthy-looking endpoint.

The kinds' own gauges (tick age, lock TTL...) are declared with each kind and passed in
(supervisor.kinds.kind_gauges()): this module does not import the kinds.

Series per subject scale with the subjects: 100,000 instruments would be 100,000 series of
tick age and as many of `supervisor_watchdog_value`, megabytes per scrape. So each watchdog
chooses (`subject_metrics`): "all", "not_ok" (only the subjects that are not OK, the worst
NOT_OK_SERIES_MAX of them; a subject that is OK again loses its series), or "none"; "auto",
the default, is "all" up to SUBJECT_SERIES_ALL_UP_TO subjects and "not_ok" above. The
aggregates are always there: subjects by status and the largest value.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from supervisor import __version__
from supervisor.gauges import KindGauge
from supervisor.model import Health, Status, TradingState, Verdict, Verdicts, WatchdogRun

log = logging.getLogger(__name__)

# "auto": series for every subject up to this many (a dashboard can show each instrument;
# Prometheus holds a few MB for them), only for those not OK above it.
SUBJECT_SERIES_ALL_UP_TO = 1000
NOT_OK_SERIES_MAX = 1000  # "not_ok" when everything fails at once: the worst, and counts
NOT_OK_WORST_FIRST = (Status.CRITICAL, Status.BREACH, Status.UNKNOWN, Status.WARN)


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
        self.watchdog_value = Gauge(
            "supervisor_watchdog_value",
            "The measured value per subject, in the watchdog's unit.",
            ["watchdog", "subject"],
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
        self.build_info = Gauge(
            "supervisor_build_info", "Build information.", ["version"], registry=r
        )
        self.build_info.labels(version=__version__).set(1)
        self.is_leader = Gauge(
            "supervisor_is_leader",
            "1 while this instance leads. HA is not implemented yet ([ha] is validated, not"
            " acted on): every instance leads itself, so this is always 1.",
            registry=r,
        )
        self.is_leader.set(1)
        self.kind_gauges = {
            kind: (spec, Gauge(spec.name, spec.help, spec.labels, registry=r))
            for kind, spec in kind_gauges.items()
        }
        self._server: Any = None
        # Per watchdog: its kind and the subjects it has series for, to drop them when gone.
        self._published: dict[str, tuple[str, set[str]]] = {}

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

    def observe_run(self, kind: str, run: WatchdogRun, subject_metrics: str = "auto") -> None:
        verdicts = run.verdicts
        self.watchdog_status.labels(run.watchdog).set(run.status)
        self.last_run.labels(run.watchdog).set(run.started_at)
        self.duration.labels(run.watchdog).observe(run.duration_s)
        for status in Status:
            self.subjects.labels(run.watchdog, status.name).set(verdicts.counts[status])
        top = verdicts.max_value
        self.value_max.labels(run.watchdog).set(math.nan if top is None else top)
        chosen = with_series(verdicts, subject_metrics)
        self._forget_gone_subjects(kind, run.watchdog, {verdict.subject for verdict in chosen})
        for verdict in chosen:
            value = verdict.value if verdict.value is not None else math.nan
            self.watchdog_value.labels(run.watchdog, verdict.subject).set(value)
            self._observe_kind(kind, run.watchdog, verdict.subject, value)

    def _forget_gone_subjects(self, kind: str, watchdog: str, subjects: set[str]) -> None:
        """Drop the series of subjects this run publishes no more (no longer judged, OK
        again under "not_ok"; all, if a reload changed the watchdog's kind), so that the
        series published are the subjects chosen now."""
        old_kind, before = self._published.get(watchdog, (kind, set()))
        self._published[watchdog] = (kind, subjects)
        for subject in before if old_kind != kind else before - subjects:
            self._forget_subject(old_kind, watchdog, subject)

    def _observe_kind(self, kind: str, watchdog: str, subject: str, value: float) -> None:
        found = self._kind_series(kind, watchdog, subject)
        if found is not None:
            gauge, labels = found
            gauge.labels(*labels).set(value)

    def _forget_subject(self, kind: str, watchdog: str, subject: str) -> None:
        """Drop a subject the watchdog no longer judges. Subjects are configured names, but
        prometheus_query's are the labels of whatever series its query returns: without
        this, every series that ever answered would stay published, frozen, for good."""
        self.watchdog_value.remove(watchdog, subject)
        found = self._kind_series(kind, watchdog, subject)
        if found is not None and found[1]:
            gauge, labels = found
            gauge.remove(*labels)

    def _kind_series(
        self, kind: str, watchdog: str, subject: str
    ) -> tuple[Gauge, list[str]] | None:
        """The kind's own gauge and the label values a verdict about `subject` feeds."""
        if kind not in self.kind_gauges:
            return None
        spec, gauge = self.kind_gauges[kind]
        if spec.subject is not None and subject != spec.subject:
            return None
        labels = [watchdog] if spec.watchdog_label else []
        return gauge, labels + ([subject] if spec.subject_label else [])

    def forget_watchdogs(self, names: list[str]) -> None:
        """Drop the series of watchdogs a reload removed: a gone watchdog is not "stuck"."""
        per_watchdog = [self.watchdog_status, self.watchdog_value, self.last_run, self.duration]
        per_watchdog += [self.check_cut_offs, self.subjects, self.value_max]
        per_watchdog += [gauge for spec, gauge in self.kind_gauges.values() if spec.watchdog_label]
        for name in names:
            kind, subjects = self._published.pop(name, ("", set()))
            for subject in subjects:  # also the kind gauges without a watchdog label (lock TTL)
                self._forget_subject(kind, name, subject)
            for metric in per_watchdog:
                metric.remove_by_labels({"watchdog": name})

    def observe_state(
        self, trading: TradingState, health: Health, breaker: bool, kill: bool
    ) -> None:
        self.trading_state.set(trading)
        self.health_state.set(health)
        self.breaker_tripped.set(int(breaker))
        self.kill_switch_engaged.set(int(kill))


def with_series(verdicts: Verdicts, subject_metrics: str) -> list[Verdict]:
    """The verdicts whose subjects get series of their own under `subject_metrics`."""
    if subject_metrics == "auto":
        big = len(verdicts) > SUBJECT_SERIES_ALL_UP_TO
        subject_metrics = "not_ok" if big else "all"
    if subject_metrics == "all":
        return list(verdicts)
    chosen: list[Verdict] = []
    if subject_metrics == "not_ok":
        for status in NOT_OK_WORST_FIRST:
            chosen += verdicts.with_status(status, NOT_OK_SERIES_MAX - len(chosen))
    return chosen

"""supervisor/publish/metrics.py on a fresh registry: the series it publishes follow what is
configured and judged now, never what was seen once."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from supervisor.kinds import kind_gauges
from supervisor.model import Status, Verdict, Verdicts, WatchdogRun
from supervisor.publish.metrics import Metrics
from supervisor.publish.subject_metrics import NOT_OK_SERIES_MAX


@pytest.fixture
def metrics() -> Metrics:
    return Metrics(CollectorRegistry(), kind_gauges=kind_gauges())


def run(watchdog: str, values: dict[str, float]) -> WatchdogRun:
    verdicts = [
        Verdict(watchdog, subject, Status.OK, "fine", value=value)
        for subject, value in values.items()
    ]
    return WatchdogRun(watchdog, Status.OK, Verdicts.of(verdicts), 1000.0, 0.01)


def value(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_the_daemon_leads_itself_while_ha_is_not_implemented(metrics: Metrics) -> None:
    assert value(metrics, "supervisor_is_leader") == 1


def test_failure_counters_start_at_zero_so_a_first_failure_is_an_increase(
    metrics: Metrics,
) -> None:
    metrics.prepare(["spx_ticks"], ["breaker", "kill_api"])
    actions = "supervisor_actions_total"
    assert value(metrics, actions, actuator="breaker", outcome="failed") == 0
    assert value(metrics, actions, actuator="kill_api", outcome="failed") == 0
    cut_offs = "supervisor_watchdog_check_cut_offs_total"
    assert value(metrics, cut_offs, watchdog="spx_ticks") == 0


def test_a_subject_no_longer_judged_is_dropped_not_frozen(metrics: Metrics) -> None:
    # prometheus_query's subjects are the labels of whatever series the query returns.
    metrics.observe_run("prometheus_query", run("p95", {'{pod="a"}': 1.0, '{pod="b"}': 2.0}))
    metrics.observe_run("prometheus_query", run("p95", {'{pod="b"}': 3.0}))
    watchdog_value = "supervisor_watchdog_value"
    assert value(metrics, watchdog_value, watchdog="p95", subject='{pod="a"}') is None
    assert value(metrics, watchdog_value, watchdog="p95", subject='{pod="b"}') == 3.0


def test_an_instrument_removed_from_a_watchdog_loses_its_tick_age(metrics: Metrics) -> None:
    metrics.observe_run("tick_freshness", run("ticks", {"SPX": 1.0, "ES": 2.0}))
    metrics.observe_run("tick_freshness", run("ticks", {"SPX": 1.5}))
    tick_age = "supervisor_tick_age_seconds"
    assert value(metrics, tick_age, watchdog="ticks", instrument="ES") is None
    assert value(metrics, tick_age, watchdog="ticks", instrument="SPX") == 1.5


def test_forgetting_a_watchdog_drops_its_lock_ttls_too(metrics: Metrics) -> None:
    # supervisor_lock_ttl_seconds{key} has no watchdog label to remove it by.
    metrics.observe_run("lock_ttl", run("locks", {"lock:a": 12.0}))
    assert value(metrics, "supervisor_lock_ttl_seconds", key="lock:a") == 12.0
    metrics.forget_watchdogs(["locks"])
    assert value(metrics, "supervisor_lock_ttl_seconds", key="lock:a") is None
    assert value(metrics, "supervisor_watchdog_status", watchdog="locks") is None


def test_a_watchdog_whose_kind_changed_keeps_only_its_new_kinds_series(
    metrics: Metrics,
) -> None:
    metrics.observe_run("lock_ttl", run("w", {"k": 5.0}))
    metrics.observe_run("redis_value", run("w", {"k": 7.0}))
    assert value(metrics, "supervisor_lock_ttl_seconds", key="k") is None
    assert value(metrics, "supervisor_watchdog_value", watchdog="w", subject="k") == 7.0


def verdicts(count: int, not_ok: dict[int, Status]) -> Verdicts:
    """`count` tick ages: subject i is i seconds old, with the statuses given, else OK."""
    return Verdicts.of(
        [
            Verdict("ticks", f"I{i}", not_ok.get(i, Status.OK), "r", value=float(i), unit="s")
            for i in range(count)
        ]
    )


def observe(metrics: Metrics, judged: Verdicts, mode: str = "auto") -> None:
    run = WatchdogRun("ticks", judged.worst, judged, 1000.0, 0.01)
    metrics.observe_run("tick_freshness", run, mode)


def series(metrics: Metrics, name: str) -> set[str]:
    """The subjects (or instruments) that have a series of `name`."""
    found = set()
    for family in metrics.registry.collect():
        for sample in family.samples:
            if sample.name == name:
                found.add(sample.labels.get("subject") or sample.labels["instrument"])
    return found


def test_auto_gives_every_subject_a_series_up_to_a_thousand(metrics: Metrics) -> None:
    observe(metrics, verdicts(1000, {7: Status.BREACH}))
    assert len(series(metrics, "supervisor_tick_age_seconds")) == 1000
    assert len(series(metrics, "supervisor_watchdog_value")) == 1000


def test_auto_above_a_thousand_publishes_only_what_is_not_ok(metrics: Metrics) -> None:
    observe(metrics, verdicts(1001, {7: Status.BREACH, 900: Status.WARN}))
    assert series(metrics, "supervisor_tick_age_seconds") == {"I7", "I900"}
    assert series(metrics, "supervisor_watchdog_value") == {"I7", "I900"}
    assert value(metrics, "supervisor_tick_age_seconds", watchdog="ticks", instrument="I7") == 7


def test_a_subject_ok_again_loses_its_series(metrics: Metrics) -> None:
    observe(metrics, verdicts(50, {3: Status.BREACH, 4: Status.UNKNOWN}), "not_ok")
    observe(metrics, verdicts(50, {4: Status.UNKNOWN}), "not_ok")
    assert series(metrics, "supervisor_tick_age_seconds") == {"I4"}
    observe(metrics, verdicts(50, {}), "not_ok")
    assert series(metrics, "supervisor_watchdog_value") == set()


def test_not_ok_series_are_capped_at_the_worst(metrics: Metrics) -> None:
    failing = dict.fromkeys(range(3000), Status.WARN) | {2999: Status.CRITICAL}
    observe(metrics, verdicts(3000, failing), "not_ok")
    published = series(metrics, "supervisor_watchdog_value")
    assert len(published) == NOT_OK_SERIES_MAX
    assert "I2999" in published  # the CRITICAL one first


def test_none_publishes_no_subject_but_the_aggregates(metrics: Metrics) -> None:
    observe(metrics, verdicts(10, {2: Status.BREACH}), "all")
    observe(metrics, verdicts(10, {2: Status.BREACH, 3: Status.UNKNOWN}), "none")
    assert series(metrics, "supervisor_watchdog_value") == set()
    subjects = "supervisor_watchdog_subjects"
    assert value(metrics, subjects, watchdog="ticks", status="OK") == 8
    assert value(metrics, subjects, watchdog="ticks", status="BREACH") == 1
    assert value(metrics, subjects, watchdog="ticks", status="UNKNOWN") == 1
    assert value(metrics, subjects, watchdog="ticks", status="CRITICAL") == 0
    assert value(metrics, "supervisor_watchdog_value_max", watchdog="ticks") == 9


def test_forgetting_a_watchdog_drops_its_aggregates(metrics: Metrics) -> None:
    observe(metrics, verdicts(3, {}))
    metrics.forget_watchdogs(["ticks"])
    assert value(metrics, "supervisor_watchdog_subjects", watchdog="ticks", status="OK") is None
    assert value(metrics, "supervisor_watchdog_value_max", watchdog="ticks") is None

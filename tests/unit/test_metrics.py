"""supervisor/publish/metrics.py on a fresh registry: the series it publishes follow what is
configured and judged now, never what was seen once."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from supervisor.kinds import kind_gauges
from supervisor.model import Status, Verdict, Verdicts, WatchdogRun
from supervisor.publish.metrics import Metrics


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

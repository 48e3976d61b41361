"""supervisor_actuator_engaged: one series per latch, with the watchdog that engaged it; a
reset removes only its own series, and a scrape never sees latches that are still held
vanish."""

from __future__ import annotations

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from supervisor.latch import Latch
from supervisor.model import Status, TradingState
from supervisor.publish.metrics import Metrics


def engaged_series(metrics: Metrics) -> set[tuple[str, str, str]]:
    text = generate_latest(metrics.registry).decode()
    return {
        (sample.labels["actuator"], sample.labels["level"], sample.labels["watchdog"])
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "supervisor_actuator_engaged" and sample.value == 1
    }


def test_each_latch_is_a_series_and_a_reset_removes_only_its_own() -> None:
    metrics = Metrics(kind_gauges={})
    kill = Latch(TradingState.FLATTEN, "SPX 20s old", 1.0, "spx_ticks")
    breaker = Latch(TradingState.REDUCE_ONLY, "by hand", 2.0, "")
    metrics.observe_latches({"tradier_kill": kill, "breaker": breaker})
    assert engaged_series(metrics) == {
        ("tradier_kill", "FLATTEN", "spx_ticks"),
        ("breaker", "REDUCE_ONLY", ""),
    }
    metrics.observe_latches({"tradier_kill": kill})
    assert engaged_series(metrics) == {("tradier_kill", "FLATTEN", "spx_ticks")}
    metrics.observe_latches({})
    assert engaged_series(metrics) == set()


def test_confirmed_status_per_watchdog_and_forgotten_with_it() -> None:
    metrics = Metrics(kind_gauges={})
    metrics.observe_confirmed("spx_ticks", Status.CRITICAL)
    metrics.observe_confirmed("locks", Status.OK)
    text = generate_latest(metrics.registry).decode()
    assert 'supervisor_watchdog_confirmed_status{watchdog="spx_ticks"} 3.0' in text
    metrics.forget_watchdogs(["spx_ticks"])
    text = generate_latest(metrics.registry).decode()
    assert 'watchdog="spx_ticks"' not in text
    assert 'supervisor_watchdog_confirmed_status{watchdog="locks"} 0.0' in text

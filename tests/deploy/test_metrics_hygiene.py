"""A live daemon's /metrics passes `promtool check metrics` with nothing to say, exports every
metric docs/operations.md names ("What it publishes"), and labels every series with configured names
or small fixed sets: nothing from outside can make the series count grow."""

from __future__ import annotations

import subprocess

import pytest
from prometheus_client.parser import text_string_to_metric_families

from supervisor import __version__
from supervisor.daemon.steps import ALL_STEPS
from supervisor.stored import STORES
from testbed.live_metrics import WATCHDOGS
from tests.deploy.promql import exported_names

pytestmark = pytest.mark.slow

PUBLISHED_METRICS = {  # docs/operations.md, "What it publishes": dashboards and alerts use these
    "supervisor_trading_state",
    "supervisor_health_state",
    "supervisor_watchdog_status",
    "supervisor_watchdog_confirmed_status",
    "supervisor_watchdog_value",
    "supervisor_watchdog_subjects",
    "supervisor_watchdog_value_max",
    "supervisor_watchdog_last_run_timestamp_seconds",
    "supervisor_watchdog_duration_seconds_bucket",
    "supervisor_breaker_tripped",
    "supervisor_kill_switch_engaged",
    "supervisor_actions_total",
    "supervisor_decision_unconfirmed",
    "supervisor_action_failing",
    "supervisor_reset_waiting_for_venue",
    "supervisor_actuator_engaged",
    "supervisor_tick_age_seconds",
    "supervisor_lock_ttl_seconds",
    "supervisor_margin_utilization_ratio",
    "supervisor_poison_queue_size",
    "supervisor_cb_staleness_seconds",
    "supervisor_is_leader",
    "supervisor_leader_fencing_token",
    "supervisor_ha_enabled",
    "supervisor_audit_outbox_events",
    "supervisor_audit_postgres_enabled",
    "supervisor_build_info",
    "supervisor_heartbeat_timestamp_seconds",
    "supervisor_recorder_bytes_written_total",
    "supervisor_recorder_dropped_samples_total",
    "supervisor_recorder_errors_total",
    "supervisor_unreadable_entries_total",
    "supervisor_pass_step_failures_total",
    "supervisor_clock_offset_seconds",
    "supervisor_clock_offset_uncertainty_seconds",
    "supervisor_clock_unbelieved_step_seconds",
    "supervisor_clock_offset_max_seconds",
}

# What each label may hold in testbed/live_metrics.py's config: its names, or a fixed set.
ALLOWED_LABEL_VALUES = {
    "watchdog": set(WATCHDOGS),
    "actuator": {"breaker"},
    "level": {"REDUCE_ONLY", "HALTED", "FLATTEN"},
    "outcome": {"engaged", "already_engaged", "failed", "dry_run", "heartbeat"},
    "event": {"error", "missed", "max_instances"},
    "instrument": {"SPX", "ES"},
    "key": {"live:lock:a", "live:lock:b"},
    "subject": {
        "SPX",
        "ES",
        "live:lock:a",
        "live:lock:b",
        "utilization",
        "live:owner_breaker",
        "live:queue_depth",
        "poison",
    },
    "version": {__version__},
    "status": {"OK", "WARN", "BREACH", "CRITICAL", "UNKNOWN"},
    "store": set(STORES),
    "step": set(ALL_STEPS),
}
HISTOGRAM_LABELS = {"le"}  # the buckets: fixed in supervisor/publish/metrics.py


def test_promtool_check_metrics_has_nothing_to_say(live_metrics: str, promtool: str) -> None:
    result = subprocess.run(
        [promtool, "check", "metrics"],
        input=live_metrics,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    print(f"promtool check metrics: exit {result.returncode}, {result.stdout + result.stderr!r}")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_every_metric_design_names_is_exported(live_metrics: str) -> None:
    assert PUBLISHED_METRICS - exported_names(live_metrics) == set()


def test_label_values_are_configured_names_or_fixed_sets(live_metrics: str) -> None:
    unexpected = [
        f"{sample.name}{{{name}={value!r}}}"
        for family in text_string_to_metric_families(live_metrics)
        for sample in family.samples
        for name, value in sample.labels.items()
        if name not in HISTOGRAM_LABELS and value not in ALLOWED_LABEL_VALUES.get(name, set())
    ]
    assert unexpected == []

"""deploy/grafana/trading-supervisor.json: an importable dashboard whose every panel reads the
Prometheus chosen in its `datasource` variable, whose queries are valid PromQL, and whose
metric names are the ones a live daemon exports (a renamed metric fails here, not on a
dashboard at 03:00)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.promql import exported_names, metric_names

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "trading-supervisor.json"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
MIN_SCHEMA_VERSION = 39  # Grafana 10.4; a newer Grafana migrates it on import
TRADING_STATES = {"0": "ACTIVE", "1": "REDUCE_ONLY", "2": "HALTED", "3": "FLATTEN"}
GRID_WIDTH = 24
SHOWN = {  # what an operator looks for at 03:00; each one a panel
    "supervisor_trading_state",
    "supervisor_health_state",
    "supervisor_watchdog_status",
    "supervisor_tick_age_seconds",
    "supervisor_lock_ttl_seconds",
    "supervisor_margin_utilization_ratio",
    "supervisor_poison_queue_size",
    "supervisor_cb_staleness_seconds",
    "supervisor_actions_total",
    "supervisor_watchdog_duration_seconds_bucket",
    "supervisor_heartbeat_timestamp_seconds",
}
# Grafana's own variables, replaced by something PromQL accepts before promtool parses a query.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$instance": ".*", "$watchdog": ".*"}


def dashboard() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return document


def panels() -> list[dict[str, Any]]:
    return list(dashboard()["panels"])


def variables() -> dict[str, dict[str, Any]]:
    return {variable["name"]: variable for variable in dashboard()["templating"]["list"]}


def expressions() -> list[str]:
    """Every PromQL expression: panel targets, and the query variables' label_values()."""
    exprs = [target["expr"] for panel in panels() for target in panel["targets"]]
    queries = [v["query"] for v in variables().values() if v["type"] == "query"]
    return exprs + [re.sub(r"^label_values\((.*),\s*\w+\)$", r"\1", query) for query in queries]


def test_identity_and_schema() -> None:
    document = dashboard()
    assert document["uid"] == "trading-supervisor"
    assert document["title"]
    assert document["schemaVersion"] >= MIN_SCHEMA_VERSION
    assert document["id"] is None  # importable into any Grafana: it assigns the id


def test_datasource_and_watchdog_variables() -> None:
    found = variables()
    assert found["datasource"]["type"] == "datasource"
    assert found["datasource"]["query"] == "prometheus"
    watchdog = found["watchdog"]
    assert watchdog["type"] == "query" and watchdog["datasource"] == DATASOURCE
    assert watchdog["query"].startswith("label_values(") and watchdog["query"].endswith(
        ", watchdog)"
    )


@pytest.mark.parametrize("panel", panels(), ids=lambda panel: str(panel["title"]))
def test_panel_reads_the_chosen_datasource(panel: dict[str, Any]) -> None:
    assert panel["datasource"] == DATASOURCE
    assert panel["targets"], "a panel without a query"
    for target in panel["targets"]:
        assert target["datasource"] == DATASOURCE
        assert target["expr"].strip()


def test_panels_have_unique_ids_and_fit_the_grid() -> None:
    ids = [panel["id"] for panel in panels()]
    assert len(ids) == len(set(ids))
    for panel in panels():
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["w"] > 0 and grid["x"] + grid["w"] <= GRID_WIDTH
        assert grid["h"] > 0


def test_trading_state_timeline_names_every_state() -> None:
    timelines = [
        panel
        for panel in panels()
        if panel["type"] == "state-timeline"
        and any("supervisor_trading_state" in target["expr"] for target in panel["targets"])
    ]
    assert len(timelines) == 1
    (mapping,) = timelines[0]["fieldConfig"]["defaults"]["mappings"]
    names = {value: option["text"] for value, option in mapping["options"].items()}
    assert names == TRADING_STATES


def test_the_dashboard_shows_what_an_operator_looks_for() -> None:
    used = {name for expr in expressions() for name in metric_names(expr)}
    assert SHOWN - used == set()


def test_watchdog_variable_filters_the_watchdog_panels() -> None:
    assert any('watchdog=~"$watchdog"' in expr for expr in expressions())


def test_every_query_is_valid_promql(promtool: str, tmp_path: Path) -> None:
    """promtool parses each query as a recording rule, Grafana's variables substituted."""
    rules = []
    for number, expr in enumerate(expressions()):
        for variable, value in GRAFANA_VARIABLES.items():
            expr = expr.replace(variable, value)
        assert "$" not in expr, f"a Grafana variable promtool cannot parse: {expr}"
        rules.append({"record": f"dashboard:query_{number}", "expr": expr})
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = subprocess.run(
        [promtool, "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_every_metric_in_the_dashboard_is_exported_by_a_live_daemon(live_metrics: str) -> None:
    used = {name for expr in expressions() for name in metric_names(expr)}
    assert used - exported_names(live_metrics) == set()


def panel_titled(title: str) -> dict[str, Any]:
    (found,) = [panel for panel in panels() if panel["title"] == title]
    return found


def test_a_panel_says_when_the_supervisor_does_not_answer() -> None:
    """Not only SupervisorDown: at a glance, a dead supervisor is DOWN, not a blank board
    (tests/deploy/test_alerting_live.py evaluates it in a real Prometheus)."""
    panel = panel_titled("Supervisor answering")
    (target,) = panel["targets"]
    assert target["expr"].startswith('(up{instance=~"$instance"}')
    assert "unless on (instance, job) up" in target["expr"]  # gone from the scrape config
    (mapping,) = panel["fieldConfig"]["defaults"]["mappings"]
    assert {value: option["text"] for value, option in mapping["options"].items()} == {
        "1": "UP",
        "0": "DOWN",
    }


def test_heartbeat_age_keeps_rising_while_the_supervisor_is_dead() -> None:
    """The age from the last heartbeat Prometheus saw, not only the age at each scrape
    (which ends with the last scrape)."""
    rising = 'time() - last_over_time(supervisor_heartbeat_timestamp_seconds{instance=~"$instance"}'
    for title in ("Heartbeat age", "Heartbeat age now"):
        assert any(t["expr"].startswith(rising) for t in panel_titled(title)["targets"]), title


def test_the_last_reported_trading_state_does_not_go_blank() -> None:
    (target,) = panel_titled("Trading state (last reported)")["targets"]
    assert target["expr"].startswith("last_over_time(supervisor_trading_state{")


@pytest.mark.parametrize("panel", panels(), ids=lambda panel: str(panel["title"]))
def test_a_blank_panel_says_why(panel: dict[str, Any]) -> None:
    assert panel["fieldConfig"]["defaults"]["noValue"]

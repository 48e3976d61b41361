"""deploy/prometheus/supervisor-rules.yml: promtool accepts the rules and their unit tests
pass; every alert is unit-tested, pages or warns, says what is wrong and points to a runbook
section that exists in docs/operations.md, by an absolute link once RUNBOOK_BASE is set; the metrics
it uses are the ones a live daemon exports."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from tests.deploy.promql import exported_names, metric_names
from tests.deploy.runbooks import PLACEHOLDER, RUNBOOK_PAGE, rendered_rules, runbook_anchors

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "deploy" / "prometheus" / "supervisor-rules.yml"
RULE_TESTS = REPO / "deploy" / "prometheus" / "supervisor-rules.test.yml"
SEVERITIES = {"page", "warning"}
NAMING_LABEL = {  # a metric's label that says what is wrong: the summary must name it
    "supervisor_watchdog_status": "watchdog",
    "supervisor_watchdog_confirmed_status": "watchdog",
    "supervisor_watchdog_check_cut_offs_total": "watchdog",
    "supervisor_actions_total": "actuator",
}


def alerts(text: str | None = None) -> list[dict[str, Any]]:
    document = yaml.safe_load(RULES.read_text(encoding="utf-8") if text is None else text)
    return [rule for group in document["groups"] for rule in group["rules"] if "alert" in rule]


def promtool_run(promtool: str, *args: str) -> str:
    result = subprocess.run(
        [promtool, *args], capture_output=True, text=True, timeout=60, check=False, cwd=RULES.parent
    )
    output = result.stdout + result.stderr
    print(f"promtool {' '.join(args)}: exit {result.returncode}\n{output}")
    assert result.returncode == 0, output
    return output


def test_promtool_check_rules(promtool: str) -> None:
    output = promtool_run(promtool, "check", "rules", RULES.name)
    assert f"SUCCESS: {len(alerts())} rules found" in output


def test_promtool_test_rules(promtool: str) -> None:
    assert "SUCCESS" in promtool_run(promtool, "test", "rules", RULE_TESTS.name)


def test_every_alert_has_unit_tests_that_fire_it_and_keep_it_quiet() -> None:
    document = yaml.safe_load(RULE_TESTS.read_text(encoding="utf-8"))
    cases = [case for test in document["tests"] for case in test["alert_rule_test"]]
    for alert in alerts():
        name = alert["alert"]
        own = [case for case in cases if case["alertname"] == name]
        assert any(case["exp_alerts"] for case in own), f"{name}: no case where it fires"
        assert any(not case["exp_alerts"] for case in own), f"{name}: no case where it is quiet"


@pytest.mark.parametrize("alert", alerts(), ids=lambda alert: str(alert["alert"]))
def test_alert_says_how_bad_what_and_where_to_read(alert: dict[str, Any]) -> None:
    assert alert["labels"]["severity"] in SEVERITIES
    annotations = alert["annotations"]
    assert annotations["summary"] and annotations["description"]
    for metric in metric_names(alert["expr"]) & NAMING_LABEL.keys():
        assert f"$labels.{NAMING_LABEL[metric]}" in annotations["summary"], metric
    # Each names where: the instance, or the job for an alert over a whole HA group.
    per_job = "by (job)" in alert["expr"] and "$labels.job" in annotations["summary"]
    assert "$labels.instance" in annotations["summary"] or "absent(" in alert["expr"] or per_job
    page, _, anchor = annotations["runbook_url"].partition("#")
    assert page == f"{PLACEHOLDER}/{RUNBOOK_PAGE}"  # the operator's absolute base goes first
    assert (REPO / RUNBOOK_PAGE).is_file()
    assert anchor in runbook_anchors(), f"{RUNBOOK_PAGE} has no heading for #{anchor}"


def test_rendered_runbook_links_are_absolute_and_their_anchors_exist(
    promtool: str, tmp_path: Path
) -> None:
    base = "https://git.example.com/ops/trading-supervisor/blob/main"
    text = rendered_rules(base)
    assert PLACEHOLDER not in text
    for alert in alerts(text):
        url = urlsplit(alert["annotations"]["runbook_url"])
        assert (url.scheme, url.netloc) == ("https", "git.example.com"), alert["alert"]
        assert url.path == f"/ops/trading-supervisor/blob/main/{RUNBOOK_PAGE}", alert["alert"]
        assert url.fragment in runbook_anchors(), alert["alert"]
    (tmp_path / RULES.name).write_text(text, encoding="utf-8")
    promtool_run(promtool, "check", "rules", str(tmp_path / RULES.name))


def test_trading_alert_names_the_actuator_and_the_watchdog() -> None:
    (alert,) = [a for a in alerts() if a["alert"] == "SupervisorTradingNotActive"]
    summary = alert["annotations"]["summary"]
    assert "supervisor_actuator_engaged" in summary
    assert ".Labels.actuator" in summary and ".Labels.watchdog" in summary


@pytest.mark.parametrize(
    "name",
    [
        "SupervisorTradingNotActive",
        "SupervisorWatchdogBreach",
        "SupervisorWatchdogCritical",
        "SupervisorWatchdogUnknown",
        "SupervisorDegraded",
    ],
)
def test_state_alerts_keep_the_last_state_while_the_target_is_down(name: str) -> None:
    """The promtool tests prove it in time; this keeps a new state alert from forgetting."""
    (alert,) = [a for a in alerts() if a["alert"] == name]
    assert (
        "last_over_time(" in alert["expr"]
        and "unless on (instance, job) up == 1" in (alert["expr"])
    )
    assert "does not answer scrapes" in alert["annotations"]["summary"]


@pytest.mark.slow
def test_the_rules_use_metrics_a_live_daemon_exports(live_metrics: str) -> None:
    used = {name for alert in alerts() for name in metric_names(alert["expr"])}
    assert used, "no supervisor_ metric found in the rules: is the tokenizer broken?"
    assert used - exported_names(live_metrics) == set()

"""Prometheus + Alertmanager as an anchor: Prometheus scrapes the age exporter and evaluates
`feed_age_seconds > 2` (`for: 0s`); Alertmanager's webhook receiver POSTs the alert to the
kill endpoint. Both run as children of the benchmark, with temporary data directories and
config files, on free 127.0.0.1 ports (Alertmanager's cluster port is switched off).

Two timings: TUNED (1 s scrape and evaluation, group_wait 0 s, group_interval 1 s) and
DEFAULT, the documented defaults (scrape and evaluation every 1 m; group_wait 30 s,
group_interval 5 m, repeat_interval 4 h). Debian's sample prometheus.yml says 15 s instead:
an operator who copies it gets a quarter of the scrape wait, the same group_wait.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from benchmarks.anchors.children import Child, get_json, running, wait_for_http
from testbed.waiting import free_port

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
ALERTMANAGER = shutil.which("prometheus-alertmanager") or "/usr/bin/prometheus-alertmanager"
RULE = "feed_age_seconds > 2"


@dataclass(frozen=True)
class Timing:
    """None: leave the setting out, so that the program's own default applies."""

    scrape_interval: str | None
    evaluation_interval: str | None
    group_wait: str | None
    group_interval: str | None
    repeat_interval: str | None

    @property
    def interval_s(self) -> float:
        text = self.scrape_interval or "1m"
        return float(text[:-1]) * (60 if text.endswith("m") else 1)


TUNED = Timing("1s", "1s", "0s", "1s", "1m")
DEFAULT = Timing(None, None, None, None, None)


def prometheus_config(timing: Timing, exporter: str, alertmanager: str) -> dict[str, Any]:
    intervals = {"scrape_interval": timing.scrape_interval}
    intervals["evaluation_interval"] = timing.evaluation_interval
    return {
        "global": {key: value for key, value in intervals.items() if value is not None},
        "rule_files": ["rules.yml"],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]},
        "scrape_configs": [{"job_name": "feed", "static_configs": [{"targets": [exporter]}]}],
    }


def rules() -> dict[str, Any]:
    alert = {"alert": "FeedStale", "expr": RULE, "for": "0s"}
    return {"groups": [{"name": "feed", "rules": [alert]}]}


def alertmanager_config(timing: Timing, kill_url: str) -> dict[str, Any]:
    # One group per feed (Alertmanager's own default groups everything into one), so that
    # faults of different feeds do not wait for each other's group_interval.
    route: dict[str, Any] = {"receiver": "kill", "group_by": ["alertname", "feed"]}
    for key in ("group_wait", "group_interval", "repeat_interval"):
        value = getattr(timing, key)
        if value is not None:
            route[key] = value
    webhook = {"url": kill_url, "send_resolved": False}
    return {"route": route, "receivers": [{"name": "kill", "webhook_configs": [webhook]}]}


def write(path: Path, document: dict[str, Any]) -> Path:
    """YAML is a superset of JSON: the configs are written as JSON."""
    path.write_text(json.dumps(document, indent=2), encoding="utf-8")
    return path


@dataclass
class PrometheusStack:
    prometheus: Child
    alertmanager: Child
    prometheus_url: str
    timing: Timing

    def scrape_to_evaluation_s(self) -> float:
        """How long after a scrape the rule's evaluation comes, in Prometheus' fixed phases
        (each offset by a hash of its target or group): (last evaluation - last scrape)
        modulo the interval. A sample can reach only an evaluation after it."""
        targets: Any = get_json(f"{self.prometheus_url}/api/v1/targets")
        groups: Any = get_json(f"{self.prometheus_url}/api/v1/rules")
        scraped = timestamp(targets["data"]["activeTargets"][0]["lastScrape"])
        evaluated = timestamp(groups["data"]["groups"][0]["lastEvaluation"])
        return (evaluated - scraped) % self.timing.interval_s


def timestamp(rfc3339: str) -> float:
    """Go's RFC 3339 with nanoseconds, to epoch seconds (microseconds kept)."""
    text = re.sub(r"(\.\d{1,6})\d*", r"\1", rfc3339).replace("Z", "+00:00")
    return datetime.fromisoformat(text).timestamp()


@contextlib.contextmanager
def running_prometheus(
    directory: Path, timing: Timing, exporter: str, kill_url: str
) -> Iterator[PrometheusStack]:
    directory.mkdir(parents=True, exist_ok=True)
    am_port, prom_port = free_port(), free_port()
    am_config = write(directory / "alertmanager.yml", alertmanager_config(timing, kill_url))
    write(directory / "rules.yml", rules())
    am_address = f"127.0.0.1:{am_port}"
    config = write(directory / "prometheus.yml", prometheus_config(timing, exporter, am_address))
    am_argv = [ALERTMANAGER, f"--config.file={am_config}", f"--web.listen-address={am_address}"]
    am_argv += [f"--storage.path={directory / 'am-data'}", "--cluster.listen-address="]
    prom_argv = [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={directory}/tsdb"]
    prom_argv += [f"--web.listen-address=127.0.0.1:{prom_port}"]
    with (
        running("alertmanager", am_argv, directory) as alertmanager,
        running("prometheus", prom_argv, directory) as prometheus,
    ):
        wait_for_http(alertmanager, f"http://{am_address}/-/ready")
        prometheus_url = f"http://127.0.0.1:{prom_port}"
        wait_for_http(prometheus, f"{prometheus_url}/-/ready")
        yield PrometheusStack(prometheus, alertmanager, prometheus_url, timing)

"""A real Prometheus and Alertmanager for tests/deploy/test_alerting_live.py, as an operator
runs them with the shipped rules, only faster: Prometheus scrapes the daemon every second
and evaluates every second; Alertmanager sends at once (group_wait 0s, group_interval 1s)
to a webhook receiver in the test that records every notification with its arrival time.

Both run as children (benchmarks/anchors/children.py) with their own config and data
directories under the test's tmp_path, on free 127.0.0.1 ports (Alertmanager's cluster port
off), stopped by their PIDs when the test ends.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from benchmarks.anchors.children import Child, get_json, running, wait_for_http
from benchmarks.anchors.prometheus import ALERTMANAGER, PROMETHEUS, write
from testbed.waiting import free_port
from tests.deploy.runbooks import rendered_rules

JOB = "trading-supervisor"  # the job name the shipped rules expect (SupervisorDown)
RUNBOOK_BASE = "https://runbooks.test/trading-supervisor"
GROUP_BY = ["alertname", "instance", "watchdog", "actuator"]


def installed() -> str | None:
    """The first of the two programs that is missing, or None."""
    for program in (PROMETHEUS, ALERTMANAGER):
        if not Path(program).exists():
            return program
    return None


@dataclass(frozen=True)
class Notification:
    """One alert in one webhook POST, as the pager gets it."""

    received_at: float  # epoch seconds
    status: str  # "firing" or "resolved"
    labels: dict[str, str]
    annotations: dict[str, str]

    @property
    def alertname(self) -> str:
        return self.labels.get("alertname", "")


@dataclass
class Receiver:
    """Alertmanager's webhook receiver: an HTTP server on 127.0.0.1 keeping every POST."""

    notifications: list[Notification] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, document: dict[str, Any]) -> None:
        now = time.time()
        with self.lock:
            for alert in document.get("alerts", []):
                self.notifications.append(
                    Notification(now, alert["status"], alert["labels"], alert["annotations"])
                )

    def of(self, alertname: str, **labels: str) -> list[Notification]:
        with self.lock:
            return [
                n
                for n in self.notifications
                if n.alertname == alertname and all(n.labels.get(k) == v for k, v in labels.items())
            ]

    def first(self, alertname: str, status: str = "firing", **labels: str) -> Notification | None:
        found = [n for n in self.of(alertname, **labels) if n.status == status]
        return found[0] if found else None


@contextlib.contextmanager
def receiving() -> Iterator[tuple[Receiver, str]]:
    receiver = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            receiver.record(json.loads(body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the test reads `receiver.notifications`."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield receiver, f"http://127.0.0.1:{server.server_address[1]}/alerts"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@dataclass
class AlertingStack:
    prometheus: Child
    alertmanager: Child
    prometheus_url: str
    alertmanager_url: str
    receiver: Receiver

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query now: the result vector (labels under "metric", value as text)."""
        url = f"{self.prometheus_url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        answer: Any = get_json(url)
        assert answer["status"] == "success", answer
        return list(answer["data"]["result"])

    def prometheus_alerts(self) -> list[dict[str, Any]]:
        answer: Any = get_json(f"{self.prometheus_url}/api/v1/alerts")
        return list(answer["data"]["alerts"])

    def alertmanager_alerts(self) -> list[dict[str, Any]]:
        """Alertmanager's active alerts (API v2)."""
        answer: Any = get_json(f"{self.alertmanager_url}/api/v2/alerts?active=true")
        return list(answer)


def prometheus_config(target: str, alertmanager: str) -> dict[str, Any]:
    return {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": ["supervisor-rules.yml", "comparison-rules.yml"],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]},
        "scrape_configs": [{"job_name": JOB, "static_configs": [{"targets": [target]}]}],
    }


def alertmanager_config(webhook: str) -> dict[str, Any]:
    route = {
        "receiver": "pager",
        "group_by": GROUP_BY,
        "group_wait": "0s",
        "group_interval": "1s",
        "repeat_interval": "1h",  # so that every notification in the test is a change
    }
    webhook_config = {"url": webhook, "send_resolved": True}
    return {"route": route, "receivers": [{"name": "pager", "webhook_configs": [webhook_config]}]}


@contextlib.contextmanager
def running_alerting(
    directory: Path, target: str, comparison_rules: dict[str, Any]
) -> Iterator[AlertingStack]:
    """Prometheus (the shipped rules, rendered with RUNBOOK_BASE, and `comparison_rules`)
    scraping `target`, and Alertmanager sending to a webhook receiver."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "supervisor-rules.yml").write_text(rendered_rules(RUNBOOK_BASE), encoding="utf-8")
    write(directory / "comparison-rules.yml", comparison_rules)
    am_address, prom_address = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    with receiving() as (receiver, webhook):
        am_config = write(directory / "alertmanager.yml", alertmanager_config(webhook))
        config = write(directory / "prometheus.yml", prometheus_config(target, am_address))
        am_argv = [ALERTMANAGER, f"--config.file={am_config}"]
        am_argv += [f"--web.listen-address={am_address}", "--cluster.listen-address="]
        am_argv += [f"--storage.path={directory / 'am-data'}"]
        prom_argv = [PROMETHEUS, f"--config.file={config}"]
        prom_argv += [f"--storage.tsdb.path={directory / 'tsdb'}"]
        prom_argv += [f"--web.listen-address={prom_address}"]
        with (
            running("alertmanager", am_argv, directory) as alertmanager,
            running("prometheus", prom_argv, directory) as prometheus,
        ):
            wait_for_http(alertmanager, f"http://{am_address}/-/ready")
            wait_for_http(prometheus, f"http://{prom_address}/-/ready")
            yield AlertingStack(
                prometheus,
                alertmanager,
                f"http://{prom_address}",
                f"http://{am_address}",
                receiver,
            )

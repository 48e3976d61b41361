"""What the fault tests share: a daemon config with the sections each test adds, and ways to
watch the daemon as an operator would: sd_notify (STATUS, WATCHDOG=1), /metrics, its log."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from pathlib import Path

import httpx

from testbed.config_blocks import BREAKER as BREAKER
from testbed.config_blocks import postgres, supervisor_tables
from testbed.daemon_process import Daemon
from testbed.notify_socket import NotifySocket
from testbed.waiting import free_port

NAMESPACE = "sup"
BREAKER_KEY = "circuit_breaker:state"


@dataclass(frozen=True)
class Setup:
    config: Path
    metrics_port: int
    state_dir: Path


def write_config(
    directory: Path,
    redis_url: str,
    body: str,
    *,
    postgres_dsn: str | None = None,
    redis_timeout: str = "300ms",
    state_dir: Path | None = None,
) -> Setup:
    """The daemon's config: [supervisor], [redis], [metrics] (a free port), optionally
    [postgres], then `body` (actuators and watchdogs)."""
    metrics_port = free_port()
    state_dir = state_dir or directory / "state"
    text = supervisor_tables(
        state_dir,
        redis_url,
        instance_id="sup-faults",
        namespace=NAMESPACE,
        metrics_port=metrics_port,
        redis_timeout=redis_timeout,
    )
    if postgres_dsn is not None:
        text += postgres(postgres_dsn)
    path = directory / "supervisor.toml"
    path.write_text(text + body, encoding="utf-8")
    return Setup(path, metrics_port, state_dir)


def key(suffix: str) -> str:
    """A key the daemon publishes under its namespace."""
    return f"{NAMESPACE}:{suffix}"


# --- sd_notify -------------------------------------------------------------------------------


def keepalives(notify: NotifySocket, since: float, until: float) -> list[float]:
    """When WATCHDOG=1 arrived between `since` and `until` (receive times, epoch seconds)."""
    return [at for at, _ in notify.lines("WATCHDOG=1") if since <= at <= until]


def longest_keepalive_gap(notify: NotifySocket, since: float, until: float) -> float:
    """The longest stretch between `since` and `until` without a WATCHDOG=1: what systemd's
    WatchdogSec= is compared with."""
    marks = [since, *keepalives(notify, since, until), until]
    return max(later - earlier for earlier, later in itertools.pairwise(marks))


def statuses(notify: NotifySocket, after: float = 0.0) -> list[str]:
    return [line.removeprefix("STATUS=") for at, line in notify.lines("STATUS=") if at >= after]


# --- /metrics --------------------------------------------------------------------------------


# Prometheus's own default scrape_timeout. A loaded CI machine (the other worker installing
# the Debian package, say) once held a daemon 2 s, and a 2 s timeout made a single read of a
# gauge come back empty (test_clock_corrections, rep 2 of 3 on one checkout).
SCRAPE_TIMEOUT_S = 10.0


def scrape(port: int) -> str:
    """The exposition, or "" while nothing answers (the daemon not up yet, or gone)."""
    try:
        return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=SCRAPE_TIMEOUT_S).text
    except httpx.HTTPError:
        return ""


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample in an exposition, labels matched exactly (any order)."""
    for line in text.splitlines():
        match = re.match(r"^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$", line)
        if match is None or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(2) or ""))
        if found == labels:
            return float(match.group(3))
    return None


# --- the log ---------------------------------------------------------------------------------


def assert_no_crash(daemon: Daemon) -> None:
    """Alive, and no traceback: an outage is handled, never a bug's way out."""
    assert daemon.process.poll() is None, daemon.log()[-3000:]
    assert "Traceback" not in daemon.log(), daemon.log()[-3000:]

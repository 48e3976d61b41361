"""Config files and tick feeders for daemon-level tests and benchmarks."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

from redis import Redis

from testbed.servers import REPO_ROOT, free_port

BASE_CONFIG = """
[supervisor]
instance_id = "sup-test"
namespace = "sup"
state_dir = "{state_dir}"
dry_run = {dry_run}

[redis]
url = "{redis_url}"
timeout = "300ms"

[metrics]
listen = "127.0.0.1:{metrics_port}"

[actuators.breaker]
kind = "redis_breaker"
level = "reduce_only"

[[watchdogs]]
name = "spx_ticks"
kind = "tick_freshness"
key = "ticks:last:{{instrument}}"
instruments = ["SPX", "ES"]
warn = "{warn}"
breach = "{breach}"
interval = "{interval}"
trip_after = {trip_after}
on_breach = ["breaker"]
"""


def write_config(
    directory: Path,
    redis_url: str,
    *,
    warn: str = "1s",
    breach: str = "1500ms",
    interval: str = "500ms",
    dry_run: bool = False,
    trip_after: int = 2,
) -> tuple[Path, int]:
    metrics_port = free_port()
    text = BASE_CONFIG.format(
        state_dir=directory / "state",
        dry_run=str(dry_run).lower(),
        redis_url=redis_url,
        metrics_port=metrics_port,
        warn=warn,
        breach=breach,
        interval=interval,
        trip_after=trip_after,
    )
    path = directory / "supervisor.toml"
    path.write_text(text, encoding="utf-8")
    return path, metrics_port


class TickFeed:
    """Writes a fresh epoch-ms tick for each instrument every `period_s`, in a thread."""

    def __init__(
        self, redis_url: str, instruments: tuple[str, ...] = ("SPX", "ES"), period_s: float = 0.1
    ):
        self.client = Redis.from_url(redis_url)
        self.instruments = instruments
        self.period_s = period_s
        self.last_tick_at = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> TickFeed:
        self.write()
        self._thread.start()
        return self

    def write(self) -> None:
        now = time.time()
        for instrument in self.instruments:
            self.client.set(f"ticks:last:{instrument}", str(int(now * 1000)))
        self.last_tick_at = int(now * 1000) / 1000

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            self.write()

    def stop(self) -> float:
        """Stop feeding; return the timestamp of the last tick written."""
        self._stop.set()
        self._thread.join(timeout=5)
        self.client.close()
        return self.last_tick_at


def cli(*args: str, timeout_s: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "supervisor", *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        cwd=REPO_ROOT,
        check=False,
    )

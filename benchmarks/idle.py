"""The daemon with the default config (config/supervisor.toml, pointed at a private
redis-server): start to READY=1, then its CPU share and RSS while idle.

    .venv/bin/python -m benchmarks.idle [--seconds 20] [--starts 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from benchmarks.report import Row, median, ms, render, usage_over
from benchmarks.stack import draining
from testbed import REPO_ROOT
from testbed.daemon_process import Daemon
from testbed.notify_socket import NotifySocket
from testbed.redis_server import running_redis
from testbed.waiting import free_port

DEFAULT_CONFIG = REPO_ROOT / "config" / "supervisor.toml"


def start(directory: Path, redis_url: str) -> tuple[Daemon, NotifySocket, float]:
    """The daemon on the default config, and seconds from its start to READY=1."""
    config = directory / "supervisor.toml"  # a copy: the daemon's log goes next to it
    shutil.copyfile(DEFAULT_CONFIG, config)
    env = {
        "SUPERVISOR_REDIS__URL": redis_url,
        "SUPERVISOR_SUPERVISOR__STATE_DIR": str(directory / "state"),
        "SUPERVISOR_METRICS__LISTEN": f"127.0.0.1:{free_port()}",
    }
    notify = NotifySocket()
    started = time.monotonic()
    daemon = Daemon(config, notify, extra_env=env)
    notify.wait_for("READY=1", timeout_s=30)
    return daemon, notify, time.monotonic() - started


def rows(seconds: float = 20.0, starts: int = 3) -> list[Row]:
    ready = []
    with tempfile.TemporaryDirectory() as tmp, running_redis(Path(tmp)) as server:
        for attempt in range(starts):
            directory = Path(tmp) / f"run{attempt}"
            directory.mkdir()
            daemon, notify, ready_s = start(directory, server.url)
            ready.append(ready_s)
            try:
                if attempt == starts - 1:
                    with draining(notify):
                        time.sleep(2)  # past start-up
                        usage = usage_over(daemon.process.pid, seconds)
            finally:
                daemon.terminate()
                notify.close()
    return [
        Row(
            f"start -> READY=1, default config (median of {starts})",
            "<= 1 s",
            f"{ms(median(ready))} (max {ms(max(ready))})",
            median(ready) <= 1.0,
        ),
        Row(
            f"idle, default config: CPU ({usage.seconds:.0f} s)",
            "<= 0.5 % of a core",
            f"{usage.cpu_percent:.2f} %",
            usage.cpu_percent <= 0.5,
        ),
        Row(
            "idle, default config: RSS (largest sample)",
            "<= 60 MB",
            f"{usage.rss_max_mb:.0f} MB",
            usage.rss_max_mb <= 60,
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--starts", type=int, default=3)
    args = parser.parse_args()
    print(render(rows(args.seconds, args.starts)))


if __name__ == "__main__":
    assert os.path.exists(DEFAULT_CONFIG)
    main()

"""This daemon as the first of the side-by-side systems: one tick_freshness watchdog over
the one feed, `breach` 2 s (`warn` 1.5 s), interval 1 s, its breach POSTing the HTTP kill
switch (trip_after 1, clear_after 1). A real subprocess, as in benchmarks/stack.py."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from benchmarks.stack import Thresholds, draining, wait_ready, write_config
from testbed.daemon_process import Daemon
from testbed.killswitch_server import KillSwitchServer
from testbed.notify_socket import NotifySocket
from testbed.redis_server import RedisServer

THRESHOLDS = Thresholds(warn="1500ms", breach="2s")


@contextlib.contextmanager
def running_supervisor(
    directory: Path, server: RedisServer, instrument: str, kill: KillSwitchServer
) -> Iterator[Daemon]:
    directory.mkdir(parents=True, exist_ok=True)
    config, _port = write_config(directory, server.url, [instrument], THRESHOLDS, kill.activate_url)
    notify = NotifySocket()
    daemon: Daemon | None = None
    try:
        daemon = Daemon(config, notify)
        wait_ready(daemon, notify, timeout_s=60)
        with draining(notify):
            yield daemon
    finally:
        if daemon is not None and daemon.process.poll() is None:
            daemon.terminate(timeout_s=30)
        notify.close()

"""Daemons with [ha] on as real processes: one Redis, one namespace, one test kill switch
(which records who asked, with which fencing token); each daemon with its own directory,
config, state_dir, log and metrics port. Stopped by the PIDs we started."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx

from testbed.config_blocks import ha_and_kill
from testbed.daemon_process import Daemon, write_config
from testbed.killswitch_server import KillSwitchServer


class HaDaemons:
    def __init__(
        self, tmp_path: Path, redis_url: str, venue: KillSwitchServer, namespace: str = "sup"
    ) -> None:
        self.tmp_path, self.redis_url, self.venue = tmp_path, redis_url, venue
        self.namespace = namespace
        self.daemons: dict[str, Daemon] = {}  # by directory name
        self.metrics_ports: dict[Daemon, int] = {}

    def start(self, directory_name: str, instance_id: str | None = None) -> Daemon:
        """A daemon in tmp_path/`directory_name`, its instance_id that name unless told."""
        directory = self.tmp_path / directory_name
        directory.mkdir()
        config, port = write_config(
            directory,
            self.redis_url,
            instance_id=instance_id or directory_name,
            namespace=self.namespace,
            extra=ha_and_kill(self.venue.activate_url),
        )
        daemon = Daemon(config, None)
        self.daemons[directory_name] = daemon
        self.metrics_ports[daemon] = port
        return daemon

    def gauge(self, daemon: Daemon, name: str) -> float:
        """An unlabelled gauge from the daemon's /metrics."""
        port = self.metrics_ports[daemon]
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        [line] = [line for line in text.splitlines() if line.startswith(f"{name} ")]
        return float(line.split()[1])

    def stop(self) -> None:
        for daemon in self.daemons.values():
            if daemon.process.poll() is None:
                daemon.process.send_signal(signal.SIGCONT)  # a stopped one must hear SIGTERM
            daemon.terminate()

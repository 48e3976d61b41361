"""`python -m supervisor` as a real subprocess: the daemon, one-shot CLI calls, and a small
config for them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from testbed import REPO_ROOT
from testbed.config_blocks import BREAKER, supervisor_tables, ticks_watchdog
from testbed.notify_socket import NotifySocket
from testbed.waiting import free_port


def write_config(
    directory: Path,
    redis_url: str,
    *,
    warn: str = "1s",
    breach: str = "1500ms",
    interval: str = "500ms",
    dry_run: bool = False,
    trip_after: int = 2,
    namespace: str = "sup",
    redis_extra: str = "",
    extra: str = "",
    instance_id: str = "sup-test",
) -> tuple[Path, int]:
    """The base config: a breaker and a tick watchdog that calls it. `redis_extra` is TOML
    inside [redis] (credentials), `extra` is TOML appended at the end (more tables:
    [postgres], actuators, watchdogs)."""
    metrics_port = free_port()
    tables = supervisor_tables(
        directory / "state",
        redis_url,
        instance_id=instance_id,
        namespace=namespace,
        metrics_port=metrics_port,
        dry_run=dry_run,
        redis_extra=redis_extra,
    )
    watchdog = ticks_watchdog(warn=warn, breach=breach, interval=interval, trip_after=trip_after)
    text = tables + BREAKER + watchdog + extra + "\n"
    path = directory / "supervisor.toml"
    path.write_text(text, encoding="utf-8")
    return path, metrics_port


class Daemon:
    """`python -m supervisor run` as a real subprocess, its stderr captured to a file.

    `wrapper` is a command that ends by exec'ing its arguments (`unshare ... sh -c '...; exec
    "$@"'`), so the PID we hold is still the daemon's own."""

    def __init__(
        self,
        config: Path,
        notify: NotifySocket | None,
        extra_env: dict[str, str] | None = None,
        wrapper: Sequence[str] = (),
    ) -> None:
        self.config = config
        self.log_path = config.with_suffix(".log")
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **(extra_env or {})}
        env.pop("JOURNAL_STREAM", None)
        if notify is not None:
            env["NOTIFY_SOCKET"] = notify.path
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [*wrapper, sys.executable, "-m", "supervisor", "run", "--config", str(config)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=REPO_ROOT,
        )

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def terminate(self, timeout_s: float = 10.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=timeout_s)
        self._log.close()
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self._log.close()


def cli(
    *args: str, timeout_s: float = 30, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """One CLI command; `extra_env` adds variables (the secrets a config names as ${ENV})."""
    return subprocess.run(
        [sys.executable, "-m", "supervisor", *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        cwd=REPO_ROOT,
        check=False,
        env={**os.environ, **(extra_env or {})},
    )

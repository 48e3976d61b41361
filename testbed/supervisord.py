"""A private supervisord (Debian's `supervisor` package) running the daemon with the program
section shipped in deploy/supervisord/, only its paths changed: its own config file, unix
socket, pidfile and logs in a temporary directory, in the foreground (`nodaemon`), stopped
by its PID."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from testbed import REPO_ROOT
from testbed.waiting import wait_until

PROGRAM_FILE = REPO_ROOT / "deploy" / "supervisord" / "trading-supervisor.conf"
PROGRAM = "trading-supervisor"
# The shipped section's paths, and what the test puts in their place.
SHIPPED_COMMAND = "/opt/trading-supervisor/venv/bin/trading-supervisor"
SHIPPED_CONFIG = "/etc/trading-supervisor/supervisor.toml"
SHIPPED_LOG = "/var/log/trading-supervisor/daemon.log"

SUPERVISORD_CONF = """
[unix_http_server]
file={directory}/s.sock
chmod=0700

[supervisord]
nodaemon=true
logfile={directory}/supervisord.log
pidfile={directory}/supervisord.pid
childlogdir={directory}
loglevel=info

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://{directory}/s.sock
"""


def program_section(config: Path, log: Path) -> str:
    """deploy/supervisord/trading-supervisor.conf with this venv's command, `config` and
    `log`; each shipped path must be there exactly once, or the file and this test differ."""
    text = PROGRAM_FILE.read_text(encoding="utf-8")
    command = str(Path(sys.executable).parent / "trading-supervisor")
    for shipped, ours in ((SHIPPED_COMMAND, command), (SHIPPED_CONFIG, str(config)),
                          (SHIPPED_LOG, str(log))):  # fmt: skip
        assert text.count(shipped) == 1, f"{PROGRAM_FILE}: expected {shipped} once"
        text = text.replace(shipped, ours)
    return text


class Supervisord:
    """supervisord in the foreground with the shipped program section; `ctl` is supervisorctl
    on its socket. The daemon's output goes to `daemon_log`, supervisord's own to `log_path`."""

    def __init__(self, directory: Path, config: Path) -> None:
        self.directory = directory
        self.conf = directory / "supervisord.conf"
        self.log_path = directory / "supervisord.log"
        self.daemon_log = directory / "daemon.log"
        self.conf.write_text(
            SUPERVISORD_CONF.format(directory=directory) + program_section(config, self.daemon_log),
            encoding="utf-8",
        )
        # Debian's supervisord is `import supervisor` too: never let it find this project's
        # package of the same name. No systemd variables: this is a host without systemd.
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        for name in ("PYTHONPATH", "NOTIFY_SOCKET", "JOURNAL_STREAM", "WATCHDOG_USEC"):
            env.pop(name, None)
        self.env = env
        self._out = (directory / "supervisord.out").open("wb")
        self.process = subprocess.Popen(
            [supervisord(), "-c", str(self.conf)],
            stdout=self._out,
            stderr=subprocess.STDOUT,
            cwd=directory,
            env=env,
        )

    def ctl(self, *args: str, timeout_s: float = 30) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [supervisorctl(), "-c", str(self.conf), *args],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            cwd=self.directory,
            env=self.env,
            check=False,
        )

    def state(self) -> str:
        """RUNNING, STOPPED, STARTING, BACKOFF, FATAL... or "" while the socket is not up."""
        fields = self.ctl("status", PROGRAM).stdout.split()
        return fields[1] if len(fields) > 1 and fields[0] == PROGRAM else ""

    def pid(self) -> int:
        match = re.search(r"pid (\d+)", self.ctl("status", PROGRAM).stdout)
        assert match, self.ctl("status", PROGRAM).stdout
        return int(match.group(1))

    def wait_running(self, timeout_s: float = 20) -> None:
        wait_until(lambda: self.state() == "RUNNING", timeout_s, f"{PROGRAM} RUNNING")

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def output(self) -> str:
        """What the daemon wrote to stdout and stderr (redirect_stderr=true)."""
        return self.daemon_log.read_text(encoding="utf-8", errors="replace")

    def stop(self, timeout_s: float = 30) -> int:
        """SIGTERM to supervisord's own PID: it stops the program, then exits. Should it not,
        it is killed, and so is the program it leaves behind (by the PID it reported)."""
        program = self.pid() if self.state() == "RUNNING" else None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
            if program is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(program, signal.SIGKILL)
            raise
        finally:
            self._out.close()


def supervisord() -> str:
    return shutil.which("supervisord") or "supervisord"


def supervisorctl() -> str:
    return shutil.which("supervisorctl") or "supervisorctl"

"""The shipped unit under a real systemd: a container per test (testbed/nspawn.py), with the
daemon installed the way docs/operations.md says, a password-protected redis-server as a unit
beside it.

- The daemon's venv is built once per session with Debian's /usr/bin/python3 at the shipped
  unit's path, /opt/trading-supervisor/venv (chrooted into an overlay, so the host's /opt is
  untouched), and bound read-only into every container at that path. It must not live under
  /root or /home: the unit's ProtectHome=yes hides both from the daemon.
- The unit file is the shipped one, byte for byte; the config, the credential and Redis are
  put where the unit looks for them.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from testbed import REPO_ROOT, nspawn
from testbed.nspawn import Container

UNIT_NAME = "trading-supervisor.service"
UNIT_FILE = REPO_ROOT / "deploy" / "systemd" / UNIT_NAME
VENV = "/opt/trading-supervisor/venv"  # the shipped unit's ExecStart lives here
CONFIG = "/etc/trading-supervisor/supervisor.toml"  # the shipped unit's --config
CREDENTIAL = "/etc/trading-supervisor/credentials/redis_password"  # its LoadCredential=
STATE_DIR = "/var/lib/trading-supervisor"  # its StateDirectory=
SYSTEM_PYTHON = "/usr/bin/python3"
REDIS_UNIT = "testbed-redis.service"
SOURCE_PARTS = ("pyproject.toml", "README.md", "supervisor")
# Per test, setup included: whichever test runs first also builds the session's venv (10-30 s;
# longer where pip has to download). Every wait inside a test has its own, shorter bound.
TIMEOUT_S = 150
TRIP = "REDUCE_ONLY: breaker tripped by spx_ticks — SPX: no tick (key missing)"  # its STATUS=

REDIS_UNIT_TEXT = """[Unit]
Description=testbed: a password-protected redis-server for the supervisor
[Service]
Type=notify
ExecStart=/usr/bin/redis-server /etc/testbed/redis.conf
DynamicUser=yes
"""

REDIS_CONF = """bind 127.0.0.1
port 6379
supervised systemd
daemonize no
save ""
appendonly no
dir /tmp
requirepass {password}
"""

CONFIG_TEXT = """
[supervisor]
instance_id = "nspawn-test"
namespace = "sup"
state_dir = "/var/lib/trading-supervisor"

[redis]
url = "redis://127.0.0.1:6379/0"
password = "cred:redis_password"
timeout = "500ms"

[metrics]
listen = "127.0.0.1:9464"

[actuators.breaker]
kind = "redis_breaker"
level = "reduce_only"
{watchdogs}"""

WATCHDOG_TEXT = """
[[watchdogs]]
name = "{name}"
kind = "tick_freshness"
key = "ticks:last:{{instrument}}"
instruments = ["{instrument}"]
warn = "30s"
breach = "60s"
interval = "500ms"
trip_after = 1
on_breach = ["breaker"]
"""


def supervisor_config(*watchdogs: tuple[str, str]) -> str:
    """A config with one tick_freshness watchdog per (name, instrument): a tick written now
    stays fresh for the whole test, a deleted tick key is a BREACH ("no tick") at once."""
    blocks = [WATCHDOG_TEXT.format(name=name, instrument=symbol) for name, symbol in watchdogs]
    return CONFIG_TEXT.format(watchdogs="".join(blocks))


@pytest.fixture(scope="session")
def nspawn_works() -> None:
    reason = nspawn.unavailable_reason()
    if reason:
        pytest.skip(f"cannot boot a systemd container here: {reason}")


@pytest.fixture(scope="session")
def opt_venv(nspawn_works: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The daemon installed with Debian's python3 into a venv built for /opt (~10 s, once)."""
    if not _system_python_has_venv():
        pytest.skip(f"{SYSTEM_PYTHON} cannot create a venv (apt-get install python3-venv)")
    source = tmp_path_factory.mktemp("source") / "trading-supervisor"
    source.mkdir()
    for part in SOURCE_PARTS:
        copy = shutil.copytree if (REPO_ROOT / part).is_dir() else shutil.copy2
        copy(REPO_ROOT / part, source / part)
    venv = tmp_path_factory.mktemp("opt") / "venv"
    pip = f"{VENV}/bin/pip install -q --disable-pip-version-check --no-warn-script-location"
    nspawn.build_in_chroot(
        f"{SYSTEM_PYTHON} -m venv {VENV} && {pip} /tmp/testbed-input",
        input_dir=source,
        inside=VENV,
        outside=venv,
    )
    return venv


def _system_python_has_venv() -> bool:
    probe = [SYSTEM_PYTHON, "-c", "import ensurepip, sys, venv; assert sys.version_info >= (3, 11)"]
    try:
        return subprocess.run(probe, capture_output=True, timeout=30, check=False).returncode == 0
    except OSError:
        return False


@dataclass
class Stack:
    """A booted container with Redis running and the shipped unit installed (not started)."""

    container: Container
    password: str

    def redis(self, *command: str) -> str:
        """redis-cli in the container; the password goes by environment, not argv."""
        env = {"REDISCLI_AUTH": self.password}
        return self.container.run("redis-cli", *command, env=env).stdout.strip()

    def write_tick(self, instrument: str, at: float) -> None:
        self.redis("SET", f"ticks:last:{instrument}", f"{at:.3f}")

    def write_config(self, text: str) -> None:
        self.container.write(CONFIG, text)

    def status_text(self) -> str:
        return self.container.show(UNIT_NAME, "StatusText")["StatusText"]

    def wait_for_status(self, prefix: str, timeout_s: float = 10.0) -> str:
        self.container.wait_for(
            lambda: self.status_text().startswith(prefix), timeout_s, f"STATUS={prefix}..."
        )
        return self.status_text()

    def start_and_trip(self) -> tuple[str, str]:
        """Start the unit with a fresh tick, then delete the tick key: a BREACH at once.
        Returns the STATUS= line before and after."""
        self.write_tick("SPX", time.time())
        self.container.systemctl("start", UNIT_NAME)
        active = self.wait_for_status("ACTIVE: 1 of 1 watchdogs OK")
        self.redis("DEL", "ticks:last:SPX")
        return active, self.wait_for_status(TRIP)

    def exists(self, path: str) -> bool:
        return self.container.run("test", "-e", path, check=False).returncode == 0

    def unit(self, *properties: str) -> dict[str, str]:
        return self.container.show(UNIT_NAME, *properties)

    def journal(self, *args: str) -> str:
        return self.container.journal("-u", UNIT_NAME, *args)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`trading-supervisor ARGS --config CONFIG` as an operator runs it beside the unit:
        as root, with the credentials folder the unit loads from as $CREDENTIALS_DIRECTORY."""
        env = {"CREDENTIALS_DIRECTORY": str(Path(CREDENTIAL).parent)}
        argv = [f"{VENV}/bin/trading-supervisor", *args, "--config", CONFIG]
        return self.container.run(*argv, env=env, check=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the test, so that a fixture can see whether it failed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


def _failed(node: pytest.Item) -> bool:
    report = getattr(node, "report_call", None)
    return report is not None and report.failed


@pytest.fixture
def stack(opt_venv: Path, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Stack]:
    password = secrets.token_hex(16)
    stage = tmp_path / "stage"
    stage.mkdir(mode=0o755)
    stage_file = nspawn.stage_file
    stage_file(stage, f"/etc/systemd/system/{UNIT_NAME}", UNIT_FILE.read_text())
    stage_file(stage, f"/etc/systemd/system/{REDIS_UNIT}", REDIS_UNIT_TEXT)
    stage_file(stage, "/etc/testbed/redis.conf", REDIS_CONF.format(password=password))
    stage_file(stage, CONFIG, supervisor_config(("spx_ticks", "SPX")))
    stage_file(stage, CREDENTIAL, password, 0o600)
    (stage / CREDENTIAL.lstrip("/")).parent.chmod(0o700)  # as the install steps say
    with nspawn.booted(
        stage,
        wants=[REDIS_UNIT],
        binds_ro=[(opt_venv, VENV)],
        console_log=tmp_path / "console.log",
    ) as container:
        print(f"container {container.name} booted in {container.booted_in_s:.2f}s")
        yield Stack(container, password)
        if _failed(request.node):  # shown under "Captured stdout teardown"
            print(container.diagnostics(UNIT_NAME))

"""The unit's sandbox as systemd really sets it up: LoadCredential= hands the Redis password
to the daemon, DynamicUser= runs it as a UID of its own that can write only StateDirectory=,
and ProtectHome=yes hides an interpreter that lives under /root or /home."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from testbed.waiting import wait_until
from tests.systemd.conftest import CONFIG, STATE_DIR, TIMEOUT_S, UNIT_NAME, VENV, Stack
from tests.test_systemd_unit import MAX_EXPOSURE

pytestmark = [pytest.mark.slow, pytest.mark.timeout(TIMEOUT_S)]

CREDENTIALS = f"/run/credentials/{UNIT_NAME}"  # $CREDENTIALS_DIRECTORY of the service
DYNAMIC_UIDS = range(61184, 65520)  # systemd's range for DynamicUser= (systemd.exec(5))
PROTECTED_HOMES = (Path("/root"), Path("/home"), Path("/run/user"))


def main_pid_ids(stack: Stack) -> tuple[str, list[str]]:
    """The unit's MainPID and its real, effective, saved and file system UIDs."""
    pid = stack.unit("MainPID")["MainPID"]
    status = stack.container.run("cat", f"/proc/{pid}/status").stdout
    uids = next(line.split()[1:] for line in status.splitlines() if line.startswith("Uid:"))
    return pid, uids


def as_the_service(stack: Stack, pid: str, uid: str, script: str) -> str:
    """Run `script` in the daemon's own namespaces (its mount namespace with the read-only
    file system, its user namespace) as its dynamic UID: what the daemon may write."""
    enter = ["nsenter", "-t", pid, "-a", "-S", uid, "-G", uid, "--", "sh", "-c", script]
    result = stack.container.run(*enter, check=False)
    return result.stdout + result.stderr


def test_credential_reaches_a_password_protected_redis(stack: Stack) -> None:
    refused = stack.container.run("redis-cli", "PING", check=False).stdout.strip()
    stack.start_and_trip()  # it reads and writes Redis: the password arrived
    pid, [uid, *_] = main_pid_ids(stack)
    delivered = as_the_service(stack, pid, uid, f"cat {CREDENTIALS}/redis_password")
    config = stack.container.run("cat", CONFIG).stdout
    clients = stack.redis("CLIENT", "LIST")
    print(f"PING without the password: {refused}\n{clients}")
    assert refused.startswith("NOAUTH")
    assert delivered == stack.password  # what LoadCredential= put where the daemon reads
    assert 'password = "cred:redis_password"' in config and stack.password not in config
    assert "name=trading-supervisor:nspawn-test" in clients
    assert "DEGRADED" not in stack.status_text()
    assert stack.redis("GET", "circuit_breaker:state").startswith("{")


def test_daemon_runs_as_a_dynamic_user_that_writes_only_its_state_directory(
    stack: Stack,
) -> None:
    stack.start_and_trip()  # engaged.json is written on a trip (by a worker thread)
    wait_until(lambda: stack.exists(f"{STATE_DIR}/engaged.json"), 5, "the latch file")
    pid, uids = main_pid_ids(stack)
    uid = uids[0]
    state = stack.container.run("stat", "-L", "-c", "%u %a %n", f"{STATE_DIR}/engaged.json")
    probe = (
        f"touch {STATE_DIR}/probe && echo state_dir: writable; "
        "for dir in /etc /opt/trading-supervisor /var/lib /root /home /usr; do "
        '  touch "$dir/probe" 2>&1 || true; '
        "done"
    )
    seen = as_the_service(stack, pid, uid, probe)
    print(f"MainPID {pid} Uid: {' '.join(uids)}\n{state.stdout}{seen}")

    assert len(set(uids)) == 1 and int(uid) in DYNAMIC_UIDS  # real, effective, saved, fs
    assert state.stdout.split()[:2] == [uid, "600"]  # UMask=0077, owned by the dynamic user
    assert "state_dir: writable" in seen
    for directory in ("/etc", "/opt/trading-supervisor", "/var/lib", "/usr"):
        assert f"touch: cannot touch '{directory}/probe': Read-only file system" in seen
    for home in ("/root", "/home"):  # ProtectHome=yes: not even there to look at
        assert f"touch: cannot touch '{home}/probe': Permission denied" in seen


def _interpreter_under_a_home() -> Path | None:
    resolved = Path(sys.executable).resolve()
    return resolved if any(resolved.is_relative_to(h) for h in PROTECTED_HOMES) else None


def test_protect_home_hides_an_interpreter_under_root(stack: Stack) -> None:
    """What the install steps (docs/operations.md) warn about: a venv made from a Python under
    /root (pyenv) or /home cannot be started by the unit at all (status=203/EXEC), and systemd keeps
    retrying every RestartSec=2s: at that spacing the default start limit (5 starts within
    10 s) is never reached, so no "start request repeated too quickly" ends the loop."""
    python = _interpreter_under_a_home()
    if python is None:
        pytest.skip(f"this test session's Python ({sys.executable}) is not under /root or /home")
    dropin = f"[Service]\nExecStart=\nExecStart={python} -m supervisor run --config {CONFIG}\n"
    stack.container.write(f"/etc/systemd/system/{UNIT_NAME}.d/home-python.conf", dropin)
    stack.container.systemctl("daemon-reload")
    stack.container.systemctl("start", UNIT_NAME, check=False)

    def failed_three_times() -> bool:  # the start and two restarts
        return stack.journal("-o", "cat").count("status=203/EXEC") >= 3

    stack.container.wait_for(failed_three_times, 15, "three failed attempts")
    unit = stack.unit("NRestarts", "Result", "ActiveState", "SubState")
    stack.container.systemctl("stop", UNIT_NAME)
    journal = stack.journal("-o", "cat")
    print(f"{unit}\n{journal}")
    assert int(unit["NRestarts"]) >= 2 and unit["Result"] == "exit-code"
    assert f"Failed to locate executable {python}: No such file or directory" in journal
    assert unit["ActiveState"] != "active"


def test_the_opt_venv_passes_the_install_check(stack: Stack) -> None:
    """The venv the tests install (Debian's python3, /opt): `unit check` has nothing to say
    about ProtectHome; the warning itself is tested in tests/unit/test_install_check.py."""
    result = stack.cli("config", "validate")
    unit = stack.container.run(f"{VENV}/bin/trading-supervisor", "unit", "check", check=False)
    python = stack.container.run("readlink", "-f", f"{VENV}/bin/python").stdout.strip()
    print(
        f"{VENV}/bin/python -> {python}\n{result.stdout}{result.stderr}{unit.stdout}{unit.stderr}"
    )
    assert result.returncode == 0 and "OK (1 watchdogs" in result.stdout
    assert "warning" not in result.stderr
    assert unit.returncode == 0 and unit.stdout.startswith("OK: nothing the unit's ProtectHome")
    assert unit.stderr == ""
    assert python.startswith("/usr/bin/python3")


def test_the_live_unit_verifies_and_keeps_its_exposure(stack: Stack) -> None:
    """What tests/test_systemd_unit.py checks offline, asked of the running manager."""
    stack.write_tick("SPX", time.time())
    stack.container.systemctl("start", UNIT_NAME)
    verify = stack.container.run("systemd-analyze", "verify", UNIT_NAME, check=False)
    security = stack.container.run("systemd-analyze", "security", UNIT_NAME, check=False)
    overall = security.stdout.strip().splitlines()[-1]
    print(f"verify: {verify.returncode} {verify.stdout}{verify.stderr}\n{overall}")
    assert verify.returncode == 0 and verify.stdout + verify.stderr == ""
    exposure = float(overall.split(": ", 1)[1].split()[0])
    assert exposure <= MAX_EXPOSURE

"""Checks for deploy/systemd/trading-supervisor.service.

- The unit keeps its contract with the daemon (Type=notify + watchdog, restart policy with
  exit status 78 = EX_CONFIG not restarted, StateDirectory, LoadCredential secrets).
- ``systemd-analyze verify`` accepts it with exit status 0 and no warnings about the unit.
- ``systemd-analyze security --offline=true`` rates its overall exposure at <= 2.0, and that
  check really notices when the sandboxing lines are removed.

No running systemd (PID 1) is needed: ``verify`` only loads unit files from disk, and
``security --offline=true`` analyses the file instead of asking the manager.
"""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[1] / "deploy" / "systemd" / "trading-supervisor.service"
MAX_EXPOSURE = 2.0
HARDENING_PREFIXES = ("Protect", "Private", "Restrict", "SystemCall", "Capability")


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """Parse a unit file into {section: {key: [values]}}; repeated keys keep every value."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = sections.setdefault("", {})
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


@pytest.fixture(scope="module")
def service() -> dict[str, list[str]]:
    return parse_unit(UNIT.read_text())["Service"]


@pytest.fixture(scope="module")
def analyze() -> str:
    path = shutil.which("systemd-analyze")
    if path is None:
        pytest.skip("systemd-analyze is not installed on this machine")
    return path


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)


def exposure(analyze: str, unit: Path) -> float:
    result = run(analyze, "security", "--offline=true", str(unit))
    assert result.returncode == 0, result.stdout + result.stderr
    match = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", result.stdout)
    assert match, result.stdout
    return float(match.group(1))


@pytest.mark.parametrize(
    ("key", "expected"),
    [("Type", "notify"), ("NotifyAccess", "main"), ("Restart", "on-failure")],
)
def test_exact_settings(service: dict[str, list[str]], key: str, expected: str) -> None:
    assert service.get(key) == [expected]


def test_watchdog_is_set(service: dict[str, list[str]]) -> None:
    assert service.get("WatchdogSec", ["0"])[-1] not in ("", "0", "infinity")


def test_config_errors_are_not_restarted(service: dict[str, list[str]]) -> None:
    statuses = " ".join(service.get("RestartPreventExitStatus", [])).split()
    assert "78" in statuses


def test_state_directory(service: dict[str, list[str]]) -> None:
    assert service.get("StateDirectory") == ["trading-supervisor"]


def test_credentials_are_loaded_from_absolute_paths(service: dict[str, list[str]]) -> None:
    credentials = service.get("LoadCredential", [])
    assert credentials
    for credential in credentials:
        name, _, path = credential.partition(":")
        assert name and path.startswith("/"), credential


def test_verify(analyze: str, service: dict[str, list[str]], tmp_path: Path) -> None:
    # `verify` fails if the ExecStart= binary is missing, and the venv is not installed here.
    # So verify a copy (same file name, every other line unchanged) whose ExecStart= binary is
    # replaced by an executable stub. `--root=` is no substitute: it would also move
    # /bin/kill and the host's units (sysinit.target, network-online.target) out of reach.
    binary = service["ExecStart"][0].split()[0]
    stub = tmp_path / "trading-supervisor"
    stub.write_text("#!/bin/sh\n")
    stub.chmod(0o755)
    unit = tmp_path / UNIT.name
    unit.write_text(UNIT.read_text().replace(f"ExecStart={binary}", f"ExecStart={stub}"))

    result = run(analyze, "verify", str(unit))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert [line for line in output.splitlines() if UNIT.name in line] == []


def test_exposure_is_low(analyze: str) -> None:
    assert exposure(analyze, UNIT) <= MAX_EXPOSURE


def test_exposure_check_notices_missing_hardening(analyze: str, tmp_path: Path) -> None:
    lines = UNIT.read_text().splitlines()
    kept = [line for line in lines if not line.startswith(HARDENING_PREFIXES)]
    unit = tmp_path / UNIT.name
    unit.write_text("\n".join(kept) + "\n")
    assert exposure(analyze, unit) > MAX_EXPOSURE

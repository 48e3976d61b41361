"""protect_home_warnings: an interpreter or package that ProtectHome=yes would hide."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from supervisor.install_check import protect_home_warnings
from testbed import REPO_ROOT

SYSTEM_PACKAGE = "/opt/trading-supervisor/venv/lib/python3.11/site-packages/supervisor/__init__.py"


def test_a_system_python_and_an_opt_venv_are_fine() -> None:
    assert protect_home_warnings("/usr/bin/python3", SYSTEM_PACKAGE) == []


def test_an_interpreter_under_root_is_named_with_the_remedy() -> None:
    [warning] = protect_home_warnings("/root/.pyenv/versions/3.11.7/bin/python3.11", SYSTEM_PACKAGE)
    assert warning.startswith("Python is under /root (/root/.pyenv/versions/3.11.7/bin/python3.11)")
    assert "ProtectHome=yes" in warning and "status=203/EXEC" in warning
    assert "/usr/bin/python3 -m venv /opt/trading-supervisor/venv" in warning


def test_a_venv_under_home_is_caught_by_its_package() -> None:
    package = "/home/ops/venv/lib/python3.11/site-packages/supervisor/__init__.py"
    [warning] = protect_home_warnings("/usr/bin/python3", package)
    assert warning.startswith("the trading-supervisor package is under /home")


def test_symlinks_are_followed(tmp_path: Path) -> None:
    """A venv's bin/python is a symlink: what counts is where the interpreter really is."""
    link = tmp_path / "python"
    link.symlink_to("/run/user/1000/python3")
    [warning] = protect_home_warnings(str(link), SYSTEM_PACKAGE)
    assert "under /run/user (/run/user/1000/python3)" in warning


def test_config_validate_warns_but_still_validates() -> None:
    """The CLI prints the warnings for the interpreter running it, on stderr; exit 0."""
    result = subprocess.run(
        [sys.executable, "-m", "supervisor", "config", "validate", "config/supervisor.toml"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
        check=False,
    )
    expected = protect_home_warnings()
    assert result.returncode == 0, result.stderr
    assert "OK (1 watchdogs" in result.stdout
    for warning in expected:
        assert f"trading-supervisor: warning: {warning}" in result.stderr
    if not expected:
        assert "warning" not in result.stderr

"""protect_home_warnings: an interpreter or package that ProtectHome=yes would hide."""

from __future__ import annotations

from pathlib import Path

from pytest import CaptureFixture, MonkeyPatch

from supervisor import install_check
from supervisor.cli import main
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


def run_main(*args: str, capsys: CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_unit_check_warns_and_exits_1_where_the_unit_would_hide_the_install(
    monkeypatch: MonkeyPatch, capsys: CaptureFixture[str]
) -> None:
    monkeypatch.setattr(install_check, "HIDDEN_BY_PROTECT_HOME", (Path("/"),))
    code, out, err = run_main("unit", "check", capsys=capsys)
    assert code == 1 and out == ""
    lines = err.splitlines()
    assert len(lines) == 2  # the interpreter and the package, one line each
    assert all(line.startswith("trading-supervisor: warning: ") for line in lines)
    assert "Python is under / (" in lines[0] and "ProtectHome=yes" in lines[0]


def test_unit_check_is_ok_where_nothing_is_hidden(
    monkeypatch: MonkeyPatch, capsys: CaptureFixture[str]
) -> None:
    monkeypatch.setattr(install_check, "HIDDEN_BY_PROTECT_HOME", ())
    code, out, err = run_main("unit", "check", capsys=capsys)
    assert (code, err) == (0, "")
    assert out.startswith("OK: nothing the unit's ProtectHome=yes would hide")


def test_config_validate_says_nothing_about_protect_home(
    monkeypatch: MonkeyPatch, capsys: CaptureFixture[str], tmp_path: Path
) -> None:
    """On a laptop or under supervisord ProtectHome= hides nothing: `config validate` does
    not warn, even where `unit check` would."""
    monkeypatch.setattr(install_check, "HIDDEN_BY_PROTECT_HOME", (Path("/"),))
    assert install_check.protect_home_warnings() != []
    config = (REPO_ROOT / "config" / "supervisor.toml").read_text(encoding="utf-8")
    path = tmp_path / "supervisor.toml"
    path.write_text(config, encoding="utf-8")
    code, out, err = run_main("config", "validate", str(path), capsys=capsys)
    assert code == 0, err
    assert "OK (1 watchdogs" in out
    assert "ProtectHome" not in out + err and "warning" not in err

"""The files the wheel carries (supervisor/share/) and `install-files`: one copy of each
(supervisor/share/ only links to deploy/ and config/, which the other tests check), every
deploy and example file shipped, and installed where the install steps (docs/operations.md)
put them."""

from __future__ import annotations

import contextlib
import io
import os
import stat
from pathlib import Path

import pytest

from supervisor import shipped
from supervisor.cli import main
from testbed import REPO_ROOT

SHARE = REPO_ROOT / "supervisor" / "share"
SOURCES = sorted(
    p
    for p in [*(REPO_ROOT / "deploy").glob("*/*"), *(REPO_ROOT / "config").glob("**/*")]
    if p.is_file()
)


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(list(argv))
    return code, out.getvalue()


def test_the_share_only_links_to_the_one_copy_and_ships_all_of_it() -> None:
    links = [p for p in SHARE.rglob("*") if not p.is_dir()]
    assert links and all(p.is_symlink() for p in links), "a copy would drift from deploy/"
    assert sorted(p.resolve() for p in links) == [p.resolve() for p in SOURCES]
    assert {s.source for s in shipped.SHIPPED} == {str(p.relative_to(SHARE)) for p in links}


def test_install_files_puts_each_file_in_place(tmp_path: Path) -> None:
    code, said = run("install-files", "--root", str(tmp_path))
    assert code == 0
    for item in shipped.SHIPPED:
        target = shipped.under(tmp_path, item.target)
        assert target.read_bytes() == (SHARE / item.source).resolve().read_bytes()
        assert stat.S_IMODE(target.stat().st_mode) == 0o644
        assert f"installed {target}" in said
    unit = tmp_path / "etc/systemd/system/trading-supervisor.service"
    assert (
        unit.read_bytes() == (REPO_ROOT / "deploy/systemd/trading-supervisor.service").read_bytes()
    )
    password = tmp_path / "etc/trading-supervisor/credentials/redis_password"
    assert password.read_bytes() == b""
    assert stat.S_IMODE(password.stat().st_mode) == 0o600
    assert stat.S_IMODE(password.parent.stat().st_mode) == 0o700
    rules = tmp_path / "usr/share/trading-supervisor/prometheus/supervisor-rules.yml"
    assert rules.read_bytes() == (REPO_ROOT / "deploy/prometheus/supervisor-rules.yml").read_bytes()


def test_a_second_run_keeps_the_operators_config_and_credential(tmp_path: Path) -> None:
    assert run("install-files", "--root", str(tmp_path))[0] == 0
    config = tmp_path / "etc/trading-supervisor/supervisor.toml"
    password = tmp_path / "etc/trading-supervisor/credentials/redis_password"
    unit = tmp_path / "etc/systemd/system/trading-supervisor.service"
    config.write_text("# mine\n", encoding="utf-8")
    password.write_text("s3cret", encoding="utf-8")
    unit.write_text("stale", encoding="utf-8")
    code, said = run("install-files", "--root", str(tmp_path))
    assert code == 0
    assert config.read_text(encoding="utf-8") == "# mine\n"
    assert f"kept      {config} (yours: never replaced)" in said
    assert password.read_text(encoding="utf-8") == "s3cret"
    assert unit.read_text(encoding="utf-8") != "stale"  # the package's unit is replaced
    assert not [p for p in unit.parent.iterdir() if p.name.startswith(".")]  # no temp left


def test_list_says_what_goes_where_and_writes_nothing(tmp_path: Path) -> None:
    code, said = run("install-files", "--list", "--root", str(tmp_path))
    assert code == 0
    assert "systemd/trading-supervisor.service -> /etc/systemd/system/" in said
    assert not any(tmp_path.iterdir())


def test_a_root_it_cannot_write_is_one_line_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a directory", encoding="utf-8")
    assert main(["install-files", "--root", str(blocked)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("trading-supervisor: ") and err.count("\n") == 1
    assert "Traceback" not in err
    assert os.path.isfile(blocked)

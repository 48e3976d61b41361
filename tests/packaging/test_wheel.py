"""The wheel a user installs: built from this checkout, installed into a fresh venv (with its
dependencies from the package index, as a user would), and run from there."""

from __future__ import annotations

import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from supervisor import __version__, shipped
from testbed import REPO_ROOT

pytestmark = pytest.mark.slow

PROFILE = REPO_ROOT / "config" / "examples" / "track7_ops.toml"


def run(*argv: str | Path, timeout_s: float = 300) -> subprocess.CompletedProcess[str]:
    """Run outside the checkout, so that nothing is imported from it by accident."""
    return subprocess.run(
        [str(a) for a in argv],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
        cwd="/",
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The `trading-supervisor` script of a fresh venv holding only the wheel and its deps."""
    root = tmp_path_factory.mktemp("wheel")
    built = run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", root / "dist", REPO_ROOT)
    assert built.returncode == 0, built.stderr
    (wheel,) = (root / "dist").glob("trading_supervisor-*.whl")
    venv.create(root / "venv", with_pip=True)
    pip = run(root / "venv" / "bin" / "python", "-m", "pip", "install", "-q", wheel)
    assert pip.returncode == 0, pip.stderr
    return root / "venv" / "bin" / "trading-supervisor"


def the_wheel(installed: Path) -> Path:
    (wheel,) = (installed.parents[2] / "dist").glob("trading_supervisor-*.whl")
    return wheel


def original(item: shipped.Shipped) -> bytes:
    return (REPO_ROOT / "supervisor" / "share" / item.source).resolve().read_bytes()


def test_the_wheel_holds_the_product_and_nothing_of_the_tests(installed: Path) -> None:
    python = installed.parent / "python"
    site = run(python, "-c", "import supervisor; print(supervisor.__file__)")
    assert site.returncode == 0, site.stderr
    assert str(REPO_ROOT) not in site.stdout  # the installed copy, not this checkout
    for package in ("testbed", "tests"):
        found = run(python, "-c", f"import {package}")
        assert found.returncode != 0, f"{package} must not be shipped in the wheel"


def test_version_and_config_validate_from_the_wheel(installed: Path, tmp_path: Path) -> None:
    version = run(installed, "--version")
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == f"trading-supervisor {__version__}"
    validated = run(installed, "config", "validate", PROFILE, timeout_s=60)
    assert validated.returncode == 0, validated.stderr
    assert "OK" in validated.stdout


def test_the_wheel_carries_the_unit_rules_dashboard_acls_and_example_configs(
    installed: Path,
) -> None:
    """Before, the wheel held only code: an install needed a checkout for the rest."""
    with zipfile.ZipFile(the_wheel(installed)) as wheel:
        for item in shipped.SHIPPED:
            name = f"supervisor/share/{item.source}"
            assert wheel.read(name) == original(item), name  # the file, not a symlink


def test_install_files_from_the_wheel_needs_no_checkout(installed: Path, tmp_path: Path) -> None:
    done = run(installed, "install-files", "--root", tmp_path, timeout_s=60)
    assert done.returncode == 0, done.stderr
    for item in shipped.SHIPPED:
        assert shipped.under(tmp_path, item.target).read_bytes() == original(item)
    config = tmp_path / "etc" / "trading-supervisor" / "supervisor.toml"
    validated = run(installed, "config", "validate", config, timeout_s=60)
    assert validated.returncode == 0, validated.stderr

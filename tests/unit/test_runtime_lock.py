"""scripts/runtime_lock.py: the part of requirements.lock the Debian package installs, judged
for the interpreter the package runs on, every pin with its hashes."""

from __future__ import annotations

import subprocess
import sys

from scripts.runtime_lock import lock_entries, runtime_closure
from testbed import REPO_ROOT

LOCK = (REPO_ROOT / "requirements.lock").read_text()
LINUX_311 = {
    "implementation_name": "cpython",
    "os_name": "posix",
    "platform_machine": "x86_64",
    "platform_python_implementation": "CPython",
    "platform_system": "Linux",
    "python_version": "3.11",
    "sys_platform": "linux",
}
DEBIAN_12 = {**LINUX_311, "python_full_version": "3.11.2"}  # bookworm's python3
NEWER_311 = {**LINUX_311, "python_full_version": "3.11.7"}


def test_every_pin_of_the_lock_is_read_with_its_hashes() -> None:
    entries = lock_entries(LOCK)
    pins = [line for line in LOCK.splitlines() if "==" in line and not line.startswith(" ")]
    assert len(entries) == len(pins)
    for name, entry in entries.items():
        assert "# via" not in entry, name
        assert entry.count("--hash=sha256:") >= 1, name
    assert entries["pydantic-core"].startswith("pydantic-core==")  # canonical names


def test_the_runtime_part_is_the_daemons_dependencies_and_no_test_tool() -> None:
    needed = runtime_closure(DEBIAN_12)
    assert {"redis", "hiredis", "asyncpg", "pydantic", "pydantic-core", "apscheduler"} <= needed
    assert not needed & {"pytest", "mypy", "ruff", "hypothesis", "pip-audit", "setuptools"}
    assert needed <= set(lock_entries(LOCK)), "the package never resolves a dependency itself"


def test_markers_are_judged_for_the_packages_interpreter() -> None:
    """redis-py needs async-timeout below Python 3.11.3: Debian 12's 3.11.2 does."""
    assert "async-timeout" in runtime_closure(DEBIAN_12)
    assert "async-timeout" not in runtime_closure(NEWER_311)


def test_the_output_holds_the_runtime_pins_verbatim() -> None:
    result = subprocess.run(
        [sys.executable, REPO_ROOT / "scripts" / "runtime_lock.py", "requirements.lock", "python3"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    entries = lock_entries(LOCK)
    assert lock_entries(result.stdout) == {
        name: entries[name] for name in lock_entries(result.stdout)
    }
    assert "redis" in lock_entries(result.stdout)

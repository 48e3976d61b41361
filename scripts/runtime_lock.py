"""The runtime part of requirements.lock: what `trading-supervisor` needs to run, pinned and
hashed exactly as the lock has it, without the test tools (pytest, mypy, ruff, pip-audit...).

    .venv/bin/python scripts/runtime_lock.py requirements.lock /usr/bin/python3 > runtime.lock

The dependency closure is read from the installed distributions' metadata (scripts/bootstrap
installs the whole lock into .venv), starting at trading-supervisor without extras and
following each requirement whose marker holds for the interpreter named, the one the
package runs on (Debian 12's 3.11.2: redis-py needs async-timeout below 3.11.3, where .venv's
Python may not). A dependency missing from the lock is an error: the package must never
resolve one itself.
scripts/build-deb installs the result with `pip install --require-hashes --no-deps`.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

PROJECT = "trading-supervisor"
PIN = re.compile(r"^([A-Za-z0-9._-]+)==\S+")
# PEP 508's marker variables, as `python` sees itself (what packaging.markers computes).
MARKER_ENVIRONMENT = """
import json, os, platform, sys
info = sys.implementation.version
print(json.dumps({
    "implementation_name": sys.implementation.name,
    "implementation_version": f"{info.major}.{info.minor}.{info.micro}",
    "os_name": os.name,
    "platform_machine": platform.machine(),
    "platform_release": platform.release(),
    "platform_system": platform.system(),
    "platform_version": platform.version(),
    "python_full_version": platform.python_version(),
    "platform_python_implementation": platform.python_implementation(),
    "python_version": ".".join(platform.python_version_tuple()[:2]),
    "sys_platform": sys.platform,
}))
"""


def lock_entries(text: str) -> dict[str, str]:
    """Each pin of a pip-compile lock with its hash lines, by canonical name ("# via" dropped)."""
    entries: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        pin = PIN.match(line)
        if pin:
            current = entries.setdefault(canonicalize_name(pin.group(1)), [])
            current.append(line)
        elif current is not None and line.lstrip().startswith("--hash="):
            current.append(line)
        else:
            current = None
    return {name: "\n".join(lines) for name, lines in entries.items()}


def marker_environment(python: str) -> dict[str, str]:
    result = subprocess.run(
        [python, "-c", MARKER_ENVIRONMENT], capture_output=True, text=True, check=True
    )
    environment: dict[str, str] = json.loads(result.stdout)
    return environment


def applies(requirement: Requirement, environment: dict[str, str], extras: frozenset[str]) -> bool:
    """Whether `requirement` is needed there, with `extras` of its dependent asked for."""
    if requirement.marker is None:
        return True
    return any(
        requirement.marker.evaluate({**environment, "extra": extra}) for extra in extras or {""}
    )


def runtime_closure(environment: dict[str, str], project: str = PROJECT) -> set[str]:
    """Canonical names of everything `project` needs at runtime on a Python whose marker
    variables are `environment`, `project` itself excluded."""
    wanted: set[str] = set()
    queue: list[tuple[str, frozenset[str]]] = [(project, frozenset())]
    seen: set[tuple[str, frozenset[str]]] = set()
    while queue:
        name, extras = queue.pop()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:  # not in the lock either: main() says so
            continue
        for text in requires:
            requirement = Requirement(text)
            if not applies(requirement, environment, extras):
                continue
            dependency = canonicalize_name(requirement.name)
            wanted.add(dependency)
            queue.append((dependency, frozenset(requirement.extras)))
    return wanted


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: runtime_lock.py requirements.lock PYTHON", file=sys.stderr)
        return 2
    entries = lock_entries(Path(argv[0]).read_text())
    needed = sorted(runtime_closure(marker_environment(argv[1])))
    missing = [name for name in needed if name not in entries]
    if missing:
        print(f"runtime_lock.py: not in {argv[0]}: {', '.join(missing)}", file=sys.stderr)
        return 1
    print(f"# The runtime part of {argv[0]} for {argv[1]} (scripts/runtime_lock.py).")
    print("\n".join(entries[name] for name in needed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

"""What only the benchmarks need, installed when missing by `scripts/bootstrap --bench`:
Alertmanager, monit and curl (the anchors), matplotlib (docs/benchmark.png) and py-spy from
requirements-bench.lock. scripts/test and CI never call this."""

from __future__ import annotations

import importlib
import importlib.util
import shutil
import subprocess
import sys

from testbed import REPO_ROOT

PROGRAMS = ("prometheus", "prometheus-alertmanager", "monit", "curl", "redis-cli")
MODULES = ("matplotlib",)


def missing() -> list[str]:
    programs = [name for name in PROGRAMS if shutil.which(name) is None]
    return programs + [name for name in MODULES if importlib.util.find_spec(name) is None]


def ensure() -> None:
    lacking = missing()
    if not lacking:
        return
    print(f"benchmarks: {', '.join(lacking)} missing: scripts/bootstrap --bench", file=sys.stderr)
    subprocess.run([str(REPO_ROOT / "scripts" / "bootstrap"), "--bench"], check=True)
    importlib.invalidate_caches()
    still = missing()
    if still:
        raise RuntimeError(f"still missing after scripts/bootstrap --bench: {', '.join(still)}")

"""Audits requirements.lock with pip-audit against its vulnerability service (PyPI's JSON API).

Exit 1 when a locked package has a known vulnerability. When the service cannot be asked, or
does not answer for every package, it says so in one line and exits 0: a service we cannot
reach must not stop the tests, but it must never read as "no known vulnerabilities".
Run by scripts/test with the .venv's Python.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

LOCK = Path(__file__).resolve().parent.parent / "requirements.lock"
PIP_AUDIT = Path(sys.executable).parent / "pip-audit"
NOT_AUDITED = "pip-audit: NOT AUDITED:"


def main() -> int:
    report = run_pip_audit()
    if report is None:
        return 0
    dependencies: list[dict[str, Any]] = report["dependencies"]
    vulnerable = [d for d in dependencies if d.get("vulns")]
    skipped = [d for d in dependencies if d.get("skip_reason")]
    for dependency in vulnerable:
        for vuln in dependency["vulns"]:
            fixed = ", ".join(vuln.get("fix_versions") or []) or "no fix yet"
            package = f"{dependency['name']} {dependency['version']}"
            print(f"pip-audit: {package}: {vuln['id']} (fixed in: {fixed})")
    if vulnerable:
        return 1
    if skipped:
        first = skipped[0]
        print(
            f"{NOT_AUDITED} its service answered for {len(dependencies) - len(skipped)} of"
            f" {len(dependencies)} locked packages (e.g. {first['skip_reason']})"
        )
        return 0
    print(f"pip-audit: no known vulnerabilities in {len(dependencies)} locked packages")
    return 0


def run_pip_audit() -> dict[str, Any] | None:
    """pip-audit's JSON report on the lock, or None (said why) when it produced none."""
    with tempfile.TemporaryDirectory() as directory:
        output = Path(directory) / "audit.json"
        # --disable-pip: read the hashed pins as they are; resolving would install them.
        argv = [str(PIP_AUDIT), "--requirement", str(LOCK), "--disable-pip", "--require-hashes"]
        argv += ["--progress-spinner", "off", "--format", "json", "--output", str(output)]
        try:
            run = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
        except subprocess.TimeoutExpired:
            print(f"{NOT_AUDITED} no answer from its vulnerability service within 300 s")
            return None
        if not output.exists() or not output.read_text(encoding="utf-8").strip():
            print(f"{NOT_AUDITED} {last_line(run.stderr) or f'exit {run.returncode}'}")
            return None
        report: dict[str, Any] = json.loads(output.read_text(encoding="utf-8"))
        return report


def last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


if __name__ == "__main__":
    sys.exit(main())

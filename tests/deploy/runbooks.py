"""The shipped rules as an operator installs them: RUNBOOK_BASE replaced by the absolute URL
where README.md is served (README.md, "Prometheus and Grafana")."""

from __future__ import annotations

from pathlib import Path

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "supervisor-rules.yml"
PLACEHOLDER = "RUNBOOK_BASE"


def rendered_rules(base: str) -> str:
    """What `sed 's|RUNBOOK_BASE|<base>|'` makes of the shipped rules."""
    return RULES.read_text(encoding="utf-8").replace(PLACEHOLDER, base)

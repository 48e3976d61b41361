"""The shipped rules as an operator installs them: RUNBOOK_BASE replaced by the absolute URL
where the repository's files are served, so that `RUNBOOK_BASE/docs/operations.md#<alert>`
is the alert's runbook (docs/operations.md, "Prometheus and Grafana")."""

from __future__ import annotations

from pathlib import Path

from tests.unit.test_docs_links import anchors

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "deploy" / "prometheus" / "supervisor-rules.yml"
PLACEHOLDER = "RUNBOOK_BASE"
RUNBOOK_PAGE = "docs/operations.md"  # where the alerts' runbooks are, relative to the base


def rendered_rules(base: str) -> str:
    """What `sed 's|RUNBOOK_BASE|<base>|'` makes of the shipped rules."""
    return RULES.read_text(encoding="utf-8").replace(PLACEHOLDER, base)


def runbook_anchors() -> set[str]:
    """The anchors GitHub gives the runbook page's headings."""
    return anchors((REPO / RUNBOOK_PAGE).read_text(encoding="utf-8"))

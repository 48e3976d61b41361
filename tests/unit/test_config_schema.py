"""`config schema`: the JSON Schema an editor validates supervisor.toml with. Every shipped
profile is valid against it, and the mistakes the loader refuses are refused by it too."""

from __future__ import annotations

import contextlib
import io
import json
import tomllib
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from supervisor.cli import main
from testbed import REPO_ROOT

PROFILES = sorted((REPO_ROOT / "config").glob("**/*.toml"))


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["config", "schema"]) == 0
    printed: dict[str, Any] = json.loads(out.getvalue())
    jsonschema.Draft202012Validator.check_schema(printed)
    return printed


def as_json(node: Any) -> Any:
    """TOML's dates and times as an editor sees them against a JSON Schema: strings."""
    if isinstance(node, dict):
        return {key: as_json(value) for key, value in node.items()}
    if isinstance(node, list):
        return [as_json(item) for item in node]
    if isinstance(node, datetime | date | time):
        return node.isoformat()
    return node


def load(path: Path) -> Any:
    return as_json(tomllib.loads(path.read_text(encoding="utf-8")))


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.name)
def test_every_shipped_profile_is_valid_against_the_schema(
    schema: dict[str, Any], path: Path
) -> None:
    jsonschema.validate(load(path), schema)


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda c: c["supervisor"].update(dry_runn=True), "a mistyped key"),
        (lambda c: c["watchdogs"][0].update(kind="tick_freshnes"), "an unknown kind"),
        (lambda c: c["watchdogs"][0].update(interval="soon"), "a duration that is not one"),
    ],
)
def test_the_schema_refuses_what_the_loader_refuses(
    schema: dict[str, Any], change: Any, why: str
) -> None:
    config = load(REPO_ROOT / "config" / "supervisor.toml")
    config.setdefault("supervisor", {})
    change(config)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(config, schema)

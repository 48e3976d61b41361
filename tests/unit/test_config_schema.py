"""`config schema`: the JSON Schema an editor validates supervisor.toml with. Every shipped
profile is valid against it, with jsonschema and with the standard CLI validator
(check-jsonschema, which reads TOML itself); the corpus tests/data/broken-configs/ shows which
mistakes the loader refuses (all of them, exit 78 with the field path) and which the schema
catches too, at which path: a file's `# schema:` line says, and a regression shows."""

from __future__ import annotations

import contextlib
import functools
import io
import json
import re
import subprocess
import sys
import tomllib
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import jsonschema
import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from supervisor.cli import main
from supervisor.config.settings import Settings
from testbed import REPO_ROOT

PROFILES = sorted((REPO_ROOT / "config").glob("**/*.toml"))
BROKEN = sorted((REPO_ROOT / "tests" / "data" / "broken-configs").glob("*.toml"))


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


def check_jsonschema(schema: dict[str, Any], tmp: Path, files: list[Path]) -> dict[str, Any]:
    """check-jsonschema's JSON report on `files` (TOML read by the validator itself)."""
    schema_file = tmp / "supervisor.schema.json"
    schema_file.write_text(json.dumps(schema), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "-o", "json", "--schemafile", str(schema_file)]
        + [str(f) for f in files],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    report: dict[str, Any] = json.loads(done.stdout)
    assert report.get("parse_errors", []) == [], report["parse_errors"]
    assert done.returncode == (0 if report["status"] == "ok" else 1), done.stderr
    return report


def test_every_shipped_profile_passes_check_jsonschema(
    schema: dict[str, Any], tmp_path: Path
) -> None:
    # Before: 3 of 6 failed (`open`/`close` were `format: time`, which needs an offset).
    report = check_jsonschema(schema, tmp_path, PROFILES)
    assert (report["status"], report["errors"]) == ("ok", []), report


def header(path: Path, name: str) -> str:
    found = re.search(rf"^# {name}: (.*)$", path.read_text(encoding="utf-8"), re.MULTILINE)
    assert found, f"{path.name} has no '# {name}:' line"
    return found.group(1)


@pytest.mark.parametrize("path", BROKEN, ids=lambda p: p.stem)
def test_every_broken_config_is_refused_with_its_field_path(
    path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["config", "validate", str(path)]) == 78
    assert f"  {header(path, 'refused')}" in capsys.readouterr().err


def test_the_schema_catches_the_known_set_of_broken_configs_at_their_field(
    schema: dict[str, Any], tmp_path: Path
) -> None:
    assert len(BROKEN) >= 25
    report = check_jsonschema(schema, tmp_path, BROKEN)
    caught: dict[str, set[str]] = {}
    for error in report["errors"]:
        caught.setdefault(Path(error["filename"]).stem, set()).add(error["path"])
    expected = {p.stem: header(p, "schema") for p in BROKEN}
    missed = {name for name, where in expected.items() if where.startswith("misses")}
    assert set(caught) == set(expected) - missed
    for name, paths in caught.items():
        assert expected[name] in paths, (name, paths)  # on the field, not the whole watchdog
    print(f"the schema catches {len(caught)} of {len(BROKEN)} broken configs")


DURATION_TEXT = st.builds(
    lambda number, unit, pad: f"{pad}{number}{pad}{unit}{pad}",
    st.one_of(
        st.integers(0, 10**6).map(str),
        st.tuples(st.integers(0, 1000), st.text("0123456789", min_size=1, max_size=6)).map(
            lambda p: f"{p[0]}.{p[1]}"
        ),
    ),
    st.sampled_from(["", "ms", "s", "m", "h"]),
    st.sampled_from(["", " "]),
)
DURATION_FIELDS = ["interval", "timeout", "warn", "breach", "unknown_grace"]


@functools.cache
def validator() -> jsonschema.Draft202012Validator:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        main(["config", "schema"])
    return jsonschema.Draft202012Validator(json.loads(out.getvalue()))


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(DURATION_FIELDS), st.one_of(DURATION_TEXT, st.floats(0, 1e7)))
def test_the_schema_never_refuses_a_duration_the_loader_takes(
    field: str, value: str | float
) -> None:
    watchdog: dict[str, Any] = {"name": "w", "kind": "tick_freshness", "key": "t:{instrument}"}
    watchdog |= {"instruments": ["SPX"], "breach": 10**7, field: value}
    config = {"watchdogs": [watchdog]}
    try:
        Settings.model_validate(config)
    except pydantic.ValidationError:
        return  # refused by the loader: the schema may or may not say so
    validator().validate(config)

"""docs/configuration.md documents every key the configuration models accept, and no other.

The convention this test reads (keep to it when editing the reference):

- Fenced code blocks are skipped (their `# comments` and `[tables]` are TOML, not Markdown).
- A heading names a *scope* when it holds a code span that is
  - a TOML table header, `[redis]`, `[sessions.NAME]`, `[actuators.NAME]` or `[[watchdogs]]`:
    the section `redis`, `sessions`, `actuators`, `watchdogs`;
  - `kind = "NAME"`: that kind, in the section of the nearest heading above it
    (scope `watchdogs/tick_freshness`);
  or when its text starts with "Age thresholds" or "Value thresholds": the threshold family
  of that name in the section above it (scope `watchdogs/Age thresholds`).
  Any other heading keeps the scope of the nearest heading above it with a lower level, so a
  `## Durations` is in no scope and an `#### Example` under a kind is in that kind.
- A *field table* is a table whose header row starts with the cell `key`. Each row documents
  one key of its heading's scope: the first cell is the key as written in TOML, in backticks
  (`interval`, not the field name `interval_s`; a nested table's keys as `verify.url`). Other
  tables are not read.

What the models require, walked from Settings and supervisor/kinds.py:

- every field of each section of Settings under that section's heading;
- every field of WatchdogBase / ActuatorBase / AgeThresholds / ValueThresholds in the common
  table of its section or in its family's table;
- every other field of each registered kind (declared by the kind's own class, including one
  it re-declares with another default, like cb_staleness' `breach`, or by a nested table such
  as http's `verify`) under the kind's heading; every kind has a heading. The `kind` key
  itself is documented by that heading.

A failure names `section/kind.key`. A key documented under a scope whose model does not have
it (a renamed field) fails too, as does a heading for a kind or section that does not exist.
"""

from __future__ import annotations

import inspect
import os
import re
import tomllib
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union, get_args, get_origin

import pytest
from pydantic import BaseModel, TypeAdapter

from supervisor import kinds
from supervisor.config.actuator_base import ActuatorBase
from supervisor.config.settings import Settings
from supervisor.config.watchdog_base import AgeThresholds, ValueThresholds, WatchdogBase

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "docs" / "configuration.md"
KIND_SECTIONS: dict[str, tuple[Any, ...]] = {
    "watchdogs": kinds.WATCHDOG_KINDS,
    "actuators": (*kinds.ACTUATOR_KINDS, kinds.DEADMAN_KIND),
}
FAMILIES = ("Age thresholds", "Value thresholds")
# Base classes whose fields are documented once, in their own table, rather than per kind.
COMMON: dict[type[BaseModel], str] = {
    WatchdogBase: "watchdogs",
    ActuatorBase: "actuators",
    AgeThresholds: "watchdogs/Age thresholds",
    ValueThresholds: "watchdogs/Value thresholds",
}

HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*$")
FENCE = re.compile(r"^\s*(```|~~~)")
SECTION_SPAN = re.compile(r"`\[\[?([A-Za-z_]+)(?:\.[^`\]]*)?\]\]?`")
KIND_SPAN = re.compile(r'`kind = "([A-Za-z0-9_]+)"`')
KEY_CELL = re.compile(r"^`([A-Za-z0-9_.-]+)`$")


@dataclass
class Reference:
    """What the Markdown documents: scope -> keys in order, every scope with a heading, and
    what could not be read."""

    keys: dict[str, list[str]] = field(default_factory=dict)
    headings: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)


def heading_scope(title: str, parent: str | None) -> str | None:
    section = SECTION_SPAN.search(title)
    if section:
        return section.group(1)
    parent_section = parent.split("/")[0] if parent else None
    kind = KIND_SPAN.search(title)
    if kind:
        return f"{parent_section}/{kind.group(1)}"
    family = next((name for name in FAMILIES if title.startswith(name)), None)
    if family:
        return f"{parent_section}/{family}"
    return parent


class Reader:
    """Reads the reference line by line (outside code blocks): headings set the scope, field
    tables add keys to it."""

    def __init__(self) -> None:
        self.reference = Reference()
        self.stack: list[tuple[int, str | None]] = []  # (level, scope) of enclosing headings
        self.scope: str | None = None
        self.title = ""
        self.row = -1  # index of the current table row; -1 outside a table
        self.field_table = False

    def heading(self, number: int, level: int, title: str) -> None:
        while self.stack and self.stack[-1][0] >= level:
            self.stack.pop()
        scope = heading_scope(title, self.stack[-1][1] if self.stack else None)
        if scope is not None and scope.startswith("None/"):
            self.reference.problems.append(f"line {number}: {title!r} is under no section")
            scope = None
        self.stack.append((level, scope))
        if scope is not None:
            self.reference.headings.add(scope)
        self.scope, self.title, self.row = scope, title, -1

    def table_row(self, number: int, line: str) -> None:
        self.row += 1
        first_cell = line.split("|")[1].strip()
        if self.row == 0:  # the header
            self.field_table = first_cell == "key"
            if self.field_table and self.scope is None:
                problem = f"line {number}: a field table under {self.title!r}, in no scope"
                self.reference.problems.append(problem)
        elif self.row >= 2 and self.field_table and self.scope is not None:  # 1: the ---
            key = KEY_CELL.match(first_cell)
            if key is None:
                problem = f"line {number}: first cell {first_cell!r} is not a key in backticks"
                self.reference.problems.append(problem)
            else:
                self.reference.keys.setdefault(self.scope, []).append(key.group(1))


def read_reference(text: str) -> Reference:
    reader = Reader()
    in_fence = False
    for number, line in enumerate(text.splitlines(), start=1):
        heading = HEADING.match(line)
        if FENCE.match(line):
            in_fence = not in_fence
        elif in_fence:
            continue
        elif heading:
            reader.heading(number, len(heading.group(1)), heading.group(2))
        elif line.startswith("|"):
            reader.table_row(number, line)
        else:
            reader.row = -1
    return reader.reference


def declaring_class(model: type[BaseModel], name: str) -> type:
    """The first class in the MRO whose own body declares the field `name`."""
    return next(cls for cls in model.__mro__ if name in inspect.get_annotations(cls))


def nested_model(annotation: Any) -> type[BaseModel] | None:
    """The model of a nested table (`VerifyConfig | None` -> VerifyConfig), else None."""
    candidates = get_args(annotation) if get_origin(annotation) in (Union, types.UnionType) else ()
    for candidate in (annotation, *candidates):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def toml_keys(model: type[BaseModel], prefix: str = "") -> dict[str, type]:
    """TOML key (the alias when there is one) -> the class declaring it; nested tables too."""
    keys: dict[str, type] = {}
    for name, info in model.model_fields.items():
        key = prefix + (info.alias or name)
        keys[key] = declaring_class(model, name)
        nested = nested_model(info.annotation)
        if nested is not None:
            keys.update(toml_keys(nested, f"{key}."))
    return keys


@dataclass
class Models:
    """Scope -> the keys that must be documented there, and the keys that may be."""

    required: dict[str, list[str]] = field(default_factory=dict)
    allowed: dict[str, set[str]] = field(default_factory=dict)


def walk_models() -> Models:
    models = Models()
    for model, scope in COMMON.items():
        models.required[scope] = list(toml_keys(model))
        models.allowed[scope] = set(toml_keys(model))
    for section, info in Settings.model_fields.items():
        if section in KIND_SECTIONS:
            for kind in KIND_SECTIONS[section]:
                keys = toml_keys(kind.config)
                scope = f"{section}/{kind.name}"
                models.required[scope] = [
                    key for key, owner in keys.items() if owner not in COMMON and key != "kind"
                ]
                models.allowed[scope] = set(keys)
            continue
        annotation = info.annotation
        if get_origin(annotation) is dict:  # [sessions.NAME]
            annotation = get_args(annotation)[1]
        section_model = nested_model(annotation)
        assert section_model is not None, f"Settings.{section}: this test cannot walk it"
        models.required[section] = list(toml_keys(section_model))
        models.allowed[section] = set(toml_keys(section_model))
    return models


def problems(reference: Reference, models: Models) -> list[str]:
    found = list(reference.problems)
    for scope, keys in models.required.items():
        if scope not in reference.headings:
            found.append(f"{scope}: no heading for it in {REFERENCE.name}")
        documented = set(reference.keys.get(scope, ()))
        found += [
            f"{scope}.{key}: in the models, not in {REFERENCE.name}"
            for key in keys
            if key not in documented
        ]
    for scope in sorted(reference.headings - set(models.allowed)):
        found.append(f"{scope}: in {REFERENCE.name}, no such section or kind in the models")
    for scope, keys in reference.keys.items():
        allowed = models.allowed.get(scope, set())
        found += [
            f"{scope}.{key}: in {REFERENCE.name}, not in the models"
            for key in dict.fromkeys(keys)
            if key not in allowed and scope in models.allowed
        ]
        twice = sorted(key for key in set(keys) if keys.count(key) > 1)
        found += [f"{scope}.{key}: listed twice" for key in twice]
    return found


def reference_text() -> str:
    return REFERENCE.read_text(encoding="utf-8")


def test_the_reference_documents_every_key_of_the_models_and_no_other() -> None:
    found = problems(read_reference(reference_text()), walk_models())
    assert not found, "docs/configuration.md and the models disagree:\n" + "\n".join(found)


def test_every_kind_and_section_is_walked() -> None:
    required = walk_models().required
    for section, declarations in KIND_SECTIONS.items():
        for kind in declarations:
            assert f"{section}/{kind.name}" in required
    for section in ("supervisor", "redis", "postgres", "metrics", "ha", "sessions"):
        assert required[section]
    assert "timeout" in required["redis"]  # the alias, not timeout_s
    assert {"verify", "verify.url", "verify.expect"} <= set(required["actuators/http"])
    assert {"breach", "fail_closed"} <= set(required["watchdogs/cb_staleness"])  # re-declared


def without_row(text: str, after_heading: str, key: str) -> str:
    """`text` with the row of `key` in the first field table after `after_heading` removed."""
    start = text.index(after_heading)
    row = text.index(f"\n| `{key}` |", start)
    return text[:row] + text[text.index("\n", row + 1) :]


@pytest.mark.parametrize(
    ("heading", "key", "named"),
    [
        ('### `kind = "tick_freshness"`', "max_future", "watchdogs/tick_freshness.max_future"),
        ('### `kind = "http"`', "verify.expect", "actuators/http.verify.expect"),
        ("## `[[watchdogs]]`", "unknown_grace", "watchdogs.unknown_grace"),
        ("### Value thresholds", "direction", "watchdogs/Value thresholds.direction"),
        ("## `[redis]`", "timeout", "redis.timeout"),
        ('### `kind = "cb_staleness"`', "breach", "watchdogs/cb_staleness.breach"),
    ],
)
def test_a_missing_row_is_named(heading: str, key: str, named: str) -> None:
    text = without_row(reference_text(), heading, key)
    assert problems(read_reference(text), walk_models()) == [
        f"{named}: in the models, not in configuration.md"
    ]


def test_a_stale_row_and_a_stale_kind_are_named() -> None:
    text = reference_text().replace(
        '| `timeout` | duration | `"1s"` |', '| `timeout_ms` | duration | `"1s"` |', 1
    )
    text += '\n### `kind = "teleport"`\n\n| key | type |\n|---|---|\n| `where` | string |\n'
    assert problems(read_reference(text), walk_models()) == [
        "redis.timeout: in the models, not in configuration.md",
        "watchdogs/teleport: in configuration.md, no such section or kind in the models",
        "redis.timeout_ms: in configuration.md, not in the models",
    ]


def test_code_blocks_and_other_tables_are_not_read() -> None:
    text = "## `[redis]`\n\n```toml\n# [ha]\n| key |\n```\n\n| kind | x |\n|---|---|\n| `x` | y |\n"
    reference = read_reference(text)
    assert reference.headings == {"redis"}
    assert reference.keys == {}
    assert reference.problems == []


def toml_blocks(text: str) -> list[str]:
    return re.findall(r"^```toml\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)


def test_the_examples_in_the_reference_are_valid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each TOML example, section by section (the examples name actuators and sessions
    defined in other examples, so cross-references are not checked here)."""
    blocks = toml_blocks(reference_text())
    assert len(blocks) >= len(kinds.WATCHDOG_KINDS) + len(KIND_SECTIONS["actuators"])
    for block in blocks:
        for name in re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", block):
            monkeypatch.setenv(name, "example")
        for name in re.findall(r'"cred:([^"]+)"', block):
            (tmp_path / name).write_text("example", encoding="utf-8")
        monkeypatch.setenv("CREDENTIALS_DIRECTORY", os.fspath(tmp_path))
        for section, value in tomllib.loads(block).items():
            annotation: Any = Settings.model_fields[section].annotation
            TypeAdapter(annotation).validate_python(value)

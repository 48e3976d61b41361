"""A plugin's output read the way Icinga 2 (2.13, Debian's `icinga2-bin`) reads it.

Icinga 2 takes a check's output apart in three steps (lib/icinga/pluginutility.cpp and
lib/base/perfdatavalue.cpp): ParseCheckOutput keeps what follows the first `|` of each line,
SplitPerfdata cuts that into items (the label runs to the first `=`, the value to the next
space; a label with `::` starts a check_multi prefix), and PerfdataValue::Parse reads each
item. The first two are a dozen lines of string handling, transcribed below; the third is
Icinga's own, run by `icinga2 console` as the DSL function `parse_performance_data`, so
what it refuses (`=U`, an unknown unit) fails here as it fails in Icinga.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any


def icinga2() -> str | None:
    return shutil.which("icinga2")


def perfdata_of(output: str) -> str:
    """ParseCheckOutput: the text after the first `|` of every line, joined by spaces."""
    parts = [line.partition("|")[2] for line in output.split("\n") if "|" in line]
    return " ".join(part for part in parts if part).strip()


def split_perfdata(perfdata: str) -> list[str]:
    """SplitPerfdata, as Icinga 2.13 does it (check_multi prefixes included)."""
    items, begin, prefix = [], 0, ""
    while (eq := perfdata.find("=", begin)) != -1:
        label = perfdata[begin:eq]
        if len(label) > 2 and label[0] == "'" and label[-1] == "'":
            label = label[1:-1]
        multi = label.rfind("::")
        if multi != -1:
            prefix = ""
        space = perfdata.find(" ", eq)
        space = len(perfdata) if space == -1 else space
        value = perfdata[eq + 1 : space]
        if prefix:
            label = f"{prefix}::{label}"
        items.append(f"'{label}'={value}" if " " in label else f"{label}={value}")
        if multi != -1:
            prefix = label[:multi]
        begin = space + 1
    return items


def _dsl_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse_items(items: list[str], binary: str) -> list[dict[str, Any]]:
    """Icinga's PerfdataValue::Parse of each item, in one `icinga2 console` run; an item it
    refuses raises AssertionError with Icinga's message."""
    if not items:
        return []
    expression = "[" + ", ".join(f"parse_performance_data({_dsl_string(i)})" for i in items) + "]"
    result = subprocess.run(
        [binary, "console", "--eval", expression],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"Icinga 2 refused the perfdata: {result.stdout}{result.stderr}"
    parsed: list[dict[str, Any]] = json.loads(result.stdout)
    return parsed


def parse_plugin_output(output: str, binary: str) -> list[dict[str, Any]]:
    """Every perfdata item of a plugin's output as Icinga 2 stores it."""
    return parse_items(split_perfdata(perfdata_of(output)), binary)

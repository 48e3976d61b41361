"""The fault matrix (docs/operations.md) and tests/faults/ name each other exactly, and every
fault test is marked slow (the default `pytest` run collects them; `-m "not slow"` leaves them
out)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FAULTS = REPO / "tests" / "faults"
PAGE = REPO / "docs" / "operations.md"
HEADING = "\n## Fault matrix"
REFERENCE = re.compile(r"`(test_\w+\.py)::(test_\w+)(?:\[([^\]]+)\])?`")


def table_references() -> set[tuple[str, str, str | None]]:
    """(file, test, parameter id or None) named in the table's last column."""
    text = PAGE.read_text(encoding="utf-8")
    assert HEADING in text, f"{PAGE.name} has no {HEADING.strip()!r} section"
    rows = text.split(HEADING, 1)[1].split("\n\n| fault |", 1)[1].split("\n\n", 1)[0]
    found: set[tuple[str, str, str | None]] = set()
    for row in rows.splitlines()[2:]:  # after the rest of the header and its separator
        test_column = row.rstrip(" |").rsplit(" | ", 1)[-1]
        match = REFERENCE.fullmatch(test_column.strip())
        assert match is not None, f"no `file::test` in the last column of: {row[:80]}"
        found.add((match[1], match[2], match[3]))
    return found


def parameter_ids(function: ast.FunctionDef) -> list[str]:
    """The string ids of a `@pytest.mark.parametrize("name", [...])` of one argument."""
    for decorator in function.decorator_list:
        if isinstance(decorator, ast.Call) and ast.unparse(decorator.func).endswith("parametrize"):
            values = decorator.args[1]
            assert isinstance(values, ast.List)
            return [str(v.value) for v in values.elts if isinstance(v, ast.Constant)]
    return []


def marked_slow(module: ast.Module) -> bool:
    for node in module.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets
        ):
            return "pytest.mark.slow" in ast.unparse(node.value)
    return False


def fault_tests() -> set[tuple[str, str, str | None]]:
    """(file, test, parameter id or None) of every test in tests/faults/."""
    found: set[tuple[str, str, str | None]] = set()
    for path in sorted(FAULTS.glob("test_*.py")):
        module = ast.parse(path.read_text(encoding="utf-8"))
        tests = [
            node
            for node in module.body
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
        ]
        assert tests and marked_slow(module), f"{path.name}: tests, marked slow"
        for test in tests:
            ids = parameter_ids(test)
            found |= (
                {(path.name, test.name, i) for i in ids} if ids else {(path.name, test.name, None)}
            )
    return found


def test_the_fault_table_and_the_fault_tests_match_exactly() -> None:
    in_table, in_tests = table_references(), fault_tests()
    assert not in_table - in_tests, (
        f"the table names tests that do not exist: {in_table - in_tests}"
    )
    assert not in_tests - in_table, f"fault tests missing from the table: {in_tests - in_table}"

"""No import circle in supervisor/: a family (watchdogs, actuators, sources) imports its own
base, the registry (supervisor/kinds.py) imports the families, and nothing imports back up.

The graph is read from the source with `ast`, not from what Python happens to load: every
`import` and `from ... import` counts, including those under `if TYPE_CHECKING:` and inside
functions, since a circle hidden there is one an edit away from a half-loaded module.
Beyond circles, the direction is checked too (NEVER_IMPORTS): a watchdog never imports an
actuator nor an actuator a watchdog, and no family reaches the registry or what sits above it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = "supervisor"
ROOT = Path(__file__).resolve().parents[2]
# What reads the whole config or runs the kinds: the registry and everything above it.
ABOVE = (
    "supervisor.kinds",
    "supervisor.config.settings",
    "supervisor.config.loading",
    "supervisor.config.environment",
    "supervisor.protection",
    "supervisor.daemon",
    "supervisor.cli",
)
NEVER_IMPORTS = {  # family -> what none of its modules may import
    "supervisor.watchdogs": ("supervisor.actuators", *ABOVE),
    "supervisor.actuators": ("supervisor.watchdogs", *ABOVE),
    "supervisor.sources": ("supervisor.watchdogs", "supervisor.actuators", *ABOVE),
    "supervisor.declarations": ("supervisor.watchdogs", "supervisor.actuators", *ABOVE),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def modules() -> dict[str, Path]:
    """Every module of the package, by dotted name (a package is its __init__)."""
    return {module_name(path): path for path in sorted((ROOT / PACKAGE).rglob("*.py"))}


def is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def absolute(module: str, path: Path, node: ast.ImportFrom) -> str:
    """The dotted name `from <here> import ...` refers to, relative imports resolved."""
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    if not is_package(path):
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def imported_names(module: str, path: Path) -> Iterator[str]:
    """Every dotted name the module imports, anywhere in its body."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            source = absolute(module, path, node)
            yield source
            # `from pkg import sub` imports the module pkg.sub when there is one
            yield from (f"{source}.{alias.name}" for alias in node.names if alias.name != "*")


def loaded(name: str, known: dict[str, Path]) -> list[str]:
    """The package's modules that importing `name` runs: every package above it, then the
    deepest module the name reaches (the one imported)."""
    parts = name.split(".")
    prefixes = (".".join(parts[:end]) for end in range(1, len(parts) + 1))
    return [prefix for prefix in prefixes if prefix in known]


def targets(module: str, name: str, known: dict[str, Path]) -> set[str]:
    """What importing `name` from `module` runs besides what already runs before `module`
    (the packages above it). A package importing its own submodule runs itself only as that
    submodule's parent, which is no self-import; importing its own name is one."""
    reached = loaded(name, known)
    above = set(loaded(module, known)) - {module}
    edges = {prefix for prefix in reached[:-1] if prefix != module} | set(reached[-1:])
    return edges - above


def import_graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports."""
    known = modules()
    graph: dict[str, set[str]] = {}
    for module, path in known.items():
        names = imported_names(module, path)
        graph[module] = {target for name in names for target in targets(module, name, known)}
    return graph


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    """Every module an import of `start` leads to (`start` itself only through a circle)."""
    seen: set[str] = set()
    todo = list(graph[start])
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(graph[node])
    return seen


def a_cycle(graph: dict[str, set[str]], members: list[str]) -> list[str]:
    """One concrete circle through the component's first member, for the failure message."""
    inside = set(members)
    start = members[0]
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for child in sorted(graph[node] & inside):
            if child == start:
                return [*paths[node], start]
            if child not in paths:
                paths[child] = [*paths[node], child]
                queue.append(child)
    raise AssertionError("a strongly connected component without a cycle")  # pragma: no cover


def circles(graph: dict[str, set[str]]) -> list[str]:
    """One line per strongly connected component of more than one module, or a module that
    imports itself: the modules that lead to each other, and one circle among them."""
    reach = {module: reachable(graph, module) for module in graph}
    found, seen = [], set()
    for module in sorted(graph):
        if module in seen or module not in reach[module]:
            continue
        component = sorted(other for other in reach[module] if module in reach[other])
        seen.update(component)
        cycle = " -> ".join(a_cycle(graph, component))
        found.append(f"{len(component)} modules: {', '.join(component)}\n  e.g. {cycle}")
    return found


def test_the_graph_sees_every_kind_of_import() -> None:
    graph = import_graph()
    assert "supervisor.kinds" in graph["supervisor.config.settings"] | {
        target for module in graph["supervisor.config.settings"] for target in graph[module]
    }, "settings reaches the registry (directly or through one module)"
    assert "supervisor.watchdogs.base" in graph["supervisor.watchdogs.tick_freshness"]


def test_the_detector_finds_a_circle_and_a_self_import() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"d"}, "e": {"a"}}
    found = circles(graph)
    assert len(found) == 2
    assert "3 modules: a, b, c" in found[0] and "a -> b -> c -> a" in found[0]
    assert "1 modules: d" in found[1] and "d -> d" in found[1]
    assert circles({"a": {"b"}, "b": set()}) == []


def test_the_relative_and_type_checking_imports_count(tmp_path: Path) -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from supervisor.kinds import WatchdogConfig\n"
        "def f():\n    from . import base\n"
    )
    path = tmp_path / "mod.py"
    path.write_text(source, encoding="utf-8")
    names = set(imported_names("supervisor.watchdogs.mod", path))
    assert {"supervisor.kinds", "supervisor.watchdogs.base"} <= names


def test_there_is_no_import_circle_in_the_package() -> None:
    found = circles(import_graph())
    assert not found, "import circles in supervisor/:\n" + "\n".join(found)


def test_a_family_imports_neither_the_other_family_nor_what_is_above_it() -> None:
    graph = import_graph()
    wrong = [
        f"{module} -> {target}"
        for family, forbidden in NEVER_IMPORTS.items()
        for module in sorted(graph)
        if within(module, family)
        for target in sorted(graph[module])
        if any(within(target, prefix) for prefix in forbidden)
    ]
    assert wrong == [], "imports across the families or up:\n" + "\n".join(wrong)

"""Every Redis key the supervisor owns is built in supervisor/keys.py, and the docs name the
keys it builds.

Outside keys.py, no code under supervisor/ may build a namespaced key: an f-string, a `+`
chain, a `%` or `.format()` template or a `":".join` that puts ':' right after the namespace
(a name or attribute called `ns`, `namespace`, `_namespace`, `NAMESPACE`, ...), or ':' and a
key family of keys.py (`:engaged`, `:leader`, ...) right after any value. Messages such as
f"{name}: {problem}" (':' then a space) and other keys (f"{incident_id}:{name}") pass.

The docs side reads README.md and docs/*.md as one text: every `{ns}:...` they name is a key
some builder makes, every builder's key is named, and the configuration reference's
`namespace` row lists exactly the builders' keys.
"""

from __future__ import annotations

import ast
import inspect
import itertools
import re
from fnmatch import fnmatchcase
from pathlib import Path

import pytest

from supervisor import keys

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "supervisor"
KEYS_MODULE = PACKAGE / "keys.py"
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

NS = "{ns}"
ANY = "*"
NAMESPACE_NAMES = {"ns", "namespace"}


def builders() -> dict[str, str]:
    """Each `*_key` builder of keys.py -> the key it builds, `{ns}` and `*` for its arguments."""
    built = {}
    for name, function in inspect.getmembers(keys, inspect.isfunction):
        if function.__module__ == keys.__name__ and name.endswith("_key"):
            arguments = [ANY] * (len(inspect.signature(function).parameters) - 1)
            built[name] = function(NS, *arguments)
    return built


BUILT = builders()
FAMILIES = {pattern.split(":")[1] for pattern in BUILT.values()}  # "engaged", "leader", ...


# --- no namespaced key built outside keys.py ---------------------------------------------------


def names_namespace(node: ast.AST) -> bool:
    """`ns`, `namespace`, `self._namespace`, `settings.supervisor.namespace`, NAMESPACE..."""
    if isinstance(node, ast.Name):
        name = node.id
    elif isinstance(node, ast.Attribute):
        name = node.attr
    else:
        return False
    return name.lstrip("_").lower() in NAMESPACE_NAMES or name.lower().endswith("namespace")


def text(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def starts_a_key(before: ast.AST, after: str) -> bool:
    """`after` follows `before` in a string being built: ':' right after the namespace, or
    ':' and a key family right after anything."""
    if not after.startswith(":") or after[1:2].isspace():  # f"{x}: a message"
        return False
    family = re.match(r":([A-Za-z_]+)", after)
    return names_namespace(before) or (family is not None and family[1] in FAMILIES)


def added(node: ast.AST) -> list[ast.AST]:
    """The operands of an `a + b + c` chain, in order."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return [*added(node.left), *added(node.right)]
    return [node]


def in_fstring(node: ast.JoinedStr) -> bool:
    parts = node.values
    return any(
        isinstance(part, ast.FormattedValue) and starts_a_key(part.value, text(nxt) or "")
        for part, nxt in itertools.pairwise(parts)
    )


def in_sum(node: ast.BinOp) -> bool:
    parts = added(node)
    return any(starts_a_key(part, text(nxt) or "") for part, nxt in itertools.pairwise(parts))


def in_template(template: str, values: list[ast.AST]) -> bool:
    """A `%` or `.format()` template with a field followed by ':', filled with the namespace."""
    has_key_field = re.search(r"(%[sr]|\{[^{}]*\}):\S", template) is not None
    return has_key_field and any(names_namespace(n) for v in values for n in ast.walk(v))


def in_call(node: ast.Call) -> bool:
    function = node.func
    if not isinstance(function, ast.Attribute) or text(function.value) is None:
        return False
    template = text(function.value) or ""
    if function.attr == "format":
        return in_template(template, [*node.args, *(k.value for k in node.keywords)])
    if function.attr == "join" and template == ":" and node.args:
        items = node.args[0]
        elts = items.elts if isinstance(items, ast.List | ast.Tuple) else []
        return bool(elts) and names_namespace(elts[0])
    return False


def builds_key(node: ast.AST) -> bool:
    if isinstance(node, ast.JoinedStr):
        return in_fstring(node)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return in_sum(node)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod) and text(node.left):
        return in_template(text(node.left) or "", [node.right])
    if isinstance(node, ast.Call):
        return in_call(node)
    return False


def keys_built(source: str) -> list[int]:
    """The lines of `source` that build a namespaced key."""
    tree = ast.parse(source)
    return sorted({getattr(node, "lineno", 0) for node in ast.walk(tree) if builds_key(node)})


def test_no_namespaced_key_is_built_outside_the_keys_module() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path != KEYS_MODULE
        for line in keys_built(path.read_text(encoding="utf-8"))
    ]
    assert found == [], f"build these keys in supervisor/keys.py: {found}"


@pytest.mark.parametrize(
    "source",
    [
        'key = f"{namespace}:engaged"',
        'key = f"{self.namespace}:order:{name}"',
        'key = f"{self._namespace}:{name}"',
        'key = f"{settings.supervisor.namespace}:state"',
        'key = f"{NAMESPACE}:leader"',
        'key = f"{prefix}:reset_lock"',
        'key = f"x{ns}:seq"',
        'key = ns + ":seq"',
        'key = self._namespace + ":" + name',
        'key = prefix + ":heartbeat"',
        'key = "%s:events" % ns',
        'key = "%s:%s" % (namespace, name)',
        'key = "{}:heartbeat".format(namespace)',
        'key = "{ns}:watchdog:{name}".format(ns=self.namespace, name=name)',
        'key = ":".join([ns, "leader", "token"])',
        'key = ":".join((namespace, name))',
        'assert key.startswith(f"{namespace}:")',
    ],
)
def test_a_key_built_elsewhere_is_found(source: str) -> None:
    assert keys_built(source) == [1]


@pytest.mark.parametrize(
    "source",
    [
        'message = f"{name}: {problem}"',
        'key = f"{incident_id}:{name}"',
        'address = f"{host}:{port}"',
        'key = f"{key}:{decision.fencing_token}"',
        'log.info("%s: %s", namespace, detail)',
        'line = "%s: %s" % (path, namespace)',
        'line = "{}:{}".format(host, port)',
        'key = ":".join([host, namespace])',
        'key = "circuit_breaker:state"',
        "key = state_key(namespace)",
        '"""The `{ns}:engaged` hash."""',
        'text = f"namespace {namespace!r}"',
        'reason = f"drill {namespace}: the venue refuses"',
        'reason = namespace + ": " + detail',
    ],
)
def test_other_strings_are_not_keys(source: str) -> None:
    assert keys_built(source) == []


def own_imports(source: str) -> list[str]:
    """The modules of this package that `source` imports (relative imports included)."""
    modules = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            modules.append("." * node.level + (node.module or ""))
    return [m for m in modules if m.startswith(".") or m.split(".")[0] == "supervisor"]


def test_the_keys_module_imports_nothing_from_supervisor() -> None:
    """A leaf: whatever imports it, it cannot close an import circle."""
    assert own_imports(KEYS_MODULE.read_text(encoding="utf-8")) == []
    planted = "from __future__ import annotations\nimport os, supervisor.stored\nfrom . import text"
    assert own_imports(planted) == ["supervisor.stored", "."]


def test_no_two_builders_build_the_same_key() -> None:
    patterns = list(BUILT.values())
    assert len(set(patterns)) == len(patterns), BUILT
    assert all(pattern.startswith(f"{NS}:") for pattern in patterns)


# --- the docs name the keys keys.py builds ---------------------------------------------------

PLACEHOLDER = r"\{[^{}`]*\}|<[^<>`]*>|\*|[A-Z][A-Z_]*"  # {name}, <key ...>, *, NAME, ID
PART = rf"(?:{PLACEHOLDER}|[a-z][a-z0-9_]*)"
MENTION = re.compile(rf"\{{ns\}}(?::{PART})+")


def docs_text() -> str:
    return "\n".join(path.read_text(encoding="utf-8") for path in DOCUMENTS)


def normalized(mention: str) -> str:
    """`{ns}:watchdog:{name}` and `{ns}:watchdog:NAME` -> `{ns}:watchdog:*`."""
    head, *parts = mention.split(":")
    return ":".join([head, *(ANY if re.fullmatch(PLACEHOLDER, p) else p for p in parts)])


def named_keys(text: str) -> set[str]:
    return {normalized(m) for m in MENTION.findall(text)}


def unknown_keys(named: set[str]) -> set[str]:
    return {n for n in named if not any(fnmatchcase(n, p) for p in BUILT.values())}


def test_every_key_the_docs_name_is_built() -> None:
    named = named_keys(docs_text())
    assert len(named) >= len(BUILT)  # the docs were found and read
    assert unknown_keys(named) == set()


def test_every_built_key_is_named_in_the_docs() -> None:
    assert set(BUILT.values()) - named_keys(docs_text()) == set()


def test_the_namespace_row_lists_every_key() -> None:
    rows = [line for line in docs_text().splitlines() if line.startswith("| `namespace` |")]
    assert len(rows) == 1, "the configuration reference's `namespace` row"
    assert named_keys(rows[0]) == set(BUILT.values())


def test_a_renamed_or_unknown_key_in_the_docs_is_found() -> None:
    named = named_keys("`{ns}:watchdog:{name}` and {ns}:leader.")
    assert named == {"{ns}:watchdog:*", "{ns}:leader"}
    assert unknown_keys(named_keys("`{ns}:leader_token`, `{ns}:order`")) == {
        "{ns}:leader_token",
        "{ns}:order",
    }
    assert unknown_keys(named_keys("`{ns}:unreadable:engaged`, `{ns}:instance:ID`")) == set()

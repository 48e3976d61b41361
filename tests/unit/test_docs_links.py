"""The documentation stands on its own: every relative link in README.md and docs/*.md points
to a file of this repository (and to a heading that exists, when it names one: within a page,
between pages, README to docs and back), README.md links to nothing outside the repository,
stays a short front page (at most 250 lines) and leads to every page of docs/.

Links are `[text](target)`, `![alt](target)` and `[label]: target` definitions, outside code
blocks and code spans. A target with a scheme (`https://...`) is a web address and is not
checked, except that `file:` is refused; anything else is a path relative to the Markdown
file, optionally with a `#heading` anchor in GitHub's form (lower case, punctuation dropped,
spaces as `-`, `-1`, `-2` for repeated headings).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
PAGES = sorted((ROOT / "docs").glob("*.md"))
DOCUMENTS = [README, *PAGES]
README_MAX_LINES = 250  # a front page: what it is, the two commands, a picture, where to go

FENCE = re.compile(r"^\s*(```|~~~)")
CODE_SPAN = re.compile(r"(`+).*?\1")
INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
DEFINITION = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$")
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*$")


def prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks, code spans removed."""
    lines, in_fence = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            in_fence = not in_fence
        elif not in_fence:
            lines.append(CODE_SPAN.sub("", line))
    return lines


def links(text: str) -> list[str]:
    found: list[str] = []
    for line in prose_lines(text):
        found += INLINE_LINK.findall(line)
        definition = DEFINITION.match(line)
        if definition:
            found.append(definition.group(1))
    return found


def slug(heading: str) -> str:
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    """The anchors GitHub gives the headings of a Markdown file."""
    seen: dict[str, int] = {}
    result = set()
    in_fence = False
    for line in text.splitlines():
        if FENCE.match(line):
            in_fence = not in_fence
            continue
        heading = HEADING.match(line)
        if heading and not in_fence:
            base = slug(heading.group(1))
            count = seen.get(base, 0)
            seen[base] = count + 1
            result.add(base if count == 0 else f"{base}-{count}")
    return result


def link_problems(document: Path) -> list[str]:
    problems = []
    name = document.relative_to(ROOT)
    for target in links(document.read_text(encoding="utf-8")):
        if SCHEME.match(target):
            if target.lower().startswith("file:"):
                problems.append(f"{name}: {target}: a file outside the repository")
            continue
        path_part, _, anchor = target.partition("#")
        resolved = (document.parent / path_part).resolve() if path_part else document
        if path_part.startswith("/") or not resolved.is_relative_to(ROOT):
            problems.append(f"{name}: {target}: outside the repository")
        elif not resolved.exists():
            problems.append(f"{name}: {target}: no such file")
        elif (
            anchor
            and resolved.suffix == ".md"
            and anchor not in anchors(resolved.read_text(encoding="utf-8"))
        ):
            problems.append(f"{name}: {target}: no heading #{anchor} in {path_part or name}")
    return problems


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_points_to_a_file_in_the_repository(document: Path) -> None:
    problems = link_problems(document)
    assert not problems, "\n".join(problems)


def test_readme_links_to_nothing_outside_the_repository() -> None:
    targets = links(README.read_text(encoding="utf-8"))
    assert "docs/configuration.md" in targets
    assert not [t for t in targets if t.startswith(("../", "/")) or "/../" in t]


def test_readme_is_a_short_front_page_that_leads_to_every_page() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= README_MAX_LINES
    linked = {target.partition("#")[0] for target in links(text)}
    expected = {"docs/operations.md", "docs/configuration.md", "docs/development.md"}
    assert expected | {"docs/benchmarks.md"} <= {str(p.relative_to(ROOT)) for p in PAGES}
    unlinked = [p.relative_to(ROOT) for p in PAGES if str(p.relative_to(ROOT)) not in linked]
    assert not unlinked, f"pages README.md does not link to: {unlinked}"


def test_the_checks_can_fail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A title\n\n## `[redis]`\n", encoding="utf-8")
    readme = tmp_path / "README.md"
    readme.write_text(
        "[ok](docs/a.md#redis) [ok](#top) [web](https://example.org/x)\n"
        "[gone](docs/b.md) [out](../notes/design.md) [anchor](docs/a.md#nope)\n"
        "`[code](nowhere.md)`\n\n```\n[block](nowhere.md)\n```\n\n# Top\n",
        encoding="utf-8",
    )
    assert link_problems(readme) == [
        "README.md: docs/b.md: no such file",
        "README.md: ../notes/design.md: outside the repository",
        "README.md: docs/a.md#nope: no heading #nope in docs/a.md",
    ]


def test_links_between_pages_are_checked_both_ways(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    docs = tmp_path / "docs"
    docs.mkdir()
    (tmp_path / "README.md").write_text("# Front\n\n## The two commands\n", encoding="utf-8")
    (docs / "ops.md").write_text(
        "# Operations\n\n## Fault matrix: fault → behaviour → test\n\n### SupervisorDown\n"
        "\n## Alerts\n\n## Alerts\n\n```sh\n# not a heading\n```\n",
        encoding="utf-8",
    )
    page = docs / "dev.md"
    page.write_text(
        "# Development\n\n"
        "[a](ops.md#fault-matrix-fault--behaviour--test) [b](ops.md#supervisordown) "
        "[c](ops.md#alerts-1) [d](../README.md#the-two-commands) [e](#development) "
        "![f](picture.png)\n"
        "[g](ops.md#alerts-2) [h](../README.md#how-it-works) [i](ops.md#not-a-heading) "
        "[j](#nowhere) [k](operations.md#alerts) ![l](docs/picture.png)\n",
        encoding="utf-8",
    )
    (docs / "picture.png").write_bytes(b"\x89PNG")
    assert link_problems(page) == [
        "docs/dev.md: ops.md#alerts-2: no heading #alerts-2 in ops.md",
        "docs/dev.md: ../README.md#how-it-works: no heading #how-it-works in ../README.md",
        "docs/dev.md: ops.md#not-a-heading: no heading #not-a-heading in ops.md",
        "docs/dev.md: #nowhere: no heading #nowhere in docs/dev.md",
        "docs/dev.md: operations.md#alerts: no such file",
        "docs/dev.md: docs/picture.png: no such file",
    ]

"""`man trading-supervisor`: rendered by Debian's own groff and man-db without a warning, and
holding every command the parser has (found here by asking the parser, not the page's code),
so a command added without help text fails here instead of shipping undocumented."""

from __future__ import annotations

import argparse
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from supervisor import manpage
from supervisor.cli import _parser

needs_groff = pytest.mark.skipif(
    shutil.which("groff") is None or shutil.which("man") is None,
    reason="groff or man not installed (apt-get install groff-base man-db: scripts/bootstrap)",
)


def rendered(page: str, tmp_path: Path) -> tuple[str, str]:
    """`man -l` of the page as an operator would read it: its text and troff's warnings."""
    path = tmp_path / "trading-supervisor.1"
    path.write_text(page)
    result = subprocess.run(
        ["man", "--warnings=w", "-l", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={"MANWIDTH": "200", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout, result.stderr


def every_command(parser: argparse.ArgumentParser, words: tuple[str, ...] = ()) -> set[str]:
    """Leaf commands, found from `--help`'s own machinery: the subparsers' choices."""
    found: set[str] = set()
    subparsers = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subparsers and words:
        return {" ".join(words)}
    for action in subparsers:
        for name, sub in action.choices.items():
            found |= every_command(sub, (*words, name))
    return found


@needs_groff
def test_the_page_renders_without_a_warning(tmp_path: Path) -> None:
    page = manpage.render()
    groff = subprocess.run(
        ["groff", "-man", "-Tutf8", "-ww", "-z"], input=page, capture_output=True, text=True
    )
    assert groff.returncode == 0 and groff.stderr == "", groff.stderr
    text, warnings = rendered(page, tmp_path)
    assert warnings == ""
    assert text.startswith("TRADING-SUPERVISOR(1)")
    for section in ("NAME", "SYNOPSIS", "COMMANDS", "EXIT STATUS", "FILES", "SEE ALSO"):
        assert f"\n{section}\n" in text


@needs_groff
def test_every_command_and_option_of_the_parser_is_on_the_page(tmp_path: Path) -> None:
    text, _ = rendered(manpage.render(), tmp_path)
    headings = {line.strip() for line in text.splitlines() if line.startswith("   ")}
    commands = every_command(_parser())
    assert {"run", "check", "config validate", "unit check", "install-files"} <= commands
    assert commands <= headings, f"not on the page: {commands - headings}"
    for command in manpage.commands(_parser()):
        for action in manpage.arguments(command):
            for option in action.option_strings:
                assert f"trading-supervisor {' '.join(command.words)} " in text
                assert option in text.split(f"\n   {' '.join(command.words)}\n")[1]


def parser_with(name: str, help: str | None, option_help: str | None) -> argparse.ArgumentParser:
    parser = _parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    added = subparsers.add_parser(name, help=help)
    added.add_argument("--frequency", metavar="HZ", help=option_help)
    return parser


@needs_groff
def test_a_new_command_is_on_the_page_by_itself(tmp_path: Path) -> None:
    page = manpage.render(parser_with("rebalance", "move the hedge", "how often, in Hz"))
    text, warnings = rendered(page, tmp_path)
    assert warnings == ""
    assert "\n   rebalance\n" in text
    assert "trading-supervisor rebalance [--frequency HZ]" in text
    assert "how often, in Hz" in text


@pytest.mark.parametrize(("help", "option_help"), [(None, "how often"), ("move it", None)])
def test_a_command_or_option_without_help_is_refused(
    help: str | None, option_help: str | None
) -> None:
    with pytest.raises(manpage.MissingHelp, match="rebalance"):
        manpage.render(parser_with("rebalance", help, option_help))


# Printable ASCII but '%', which argparse itself reads as a format (`%(default)s`, `%%`).
ASCII_HELP = st.text(
    st.characters(min_codepoint=32, max_codepoint=126, exclude_characters="%"), min_size=1
).filter(str.strip)


@needs_groff
@settings(max_examples=25, deadline=None)
@given(ASCII_HELP)
def test_help_text_reaches_the_reader_as_written(help: str) -> None:
    """Outside roff's reach: a help text starting with '.' or "'" (a request), holding a
    backslash (an escape) or dashes (which must stay ASCII for copy and paste)."""
    words = help.split()
    page = manpage.render(parser_with("rebalance", "move the hedge", help))
    result = subprocess.run(
        ["groff", "-man", "-Tutf8", "-ww", "-P-cbou", "-rLL=300n"],
        input=page,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.stderr == ""
    body = result.stdout.split("--frequency HZ\n", 1)[1]
    shown = body.split("\n\n")[0].split()
    assert shown == words

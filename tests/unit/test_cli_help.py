"""`--help` speaks to operators: no note meant for the code's developers (it ended with
"Exceptions become exit codes here and nowhere else")."""

from __future__ import annotations

import contextlib
import io

import pytest

from supervisor.cli import main

COMMANDS = [[], ["run"], ["check"], ["status"], ["reset"], ["events"], ["config", "validate"]]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "top")
def test_help_has_no_developer_note(command: list[str]) -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exit_:
        main([*command, "--help"])
    assert exit_.value.code == 0
    text = out.getvalue()
    assert text.startswith("usage: trading-supervisor")
    for developer_words in ("Exceptions", "nowhere else", "docstring", "traceback"):
        assert developer_words not in text
    if not command:
        assert "act toward safety" in text

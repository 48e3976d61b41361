"""first_line: the one way an exception is shown in a log line, a reason or a note."""

from __future__ import annotations

import pytest

from supervisor.errors import FIRST_LINE_MAX_CHARS, SourceError, first_line


@pytest.mark.parametrize(
    ("exc", "shown"),
    [
        (
            ConnectionError("Error 111 connecting to 127.0.0.1:1. Connection refused."),
            "ConnectionError: Error 111 connecting to 127.0.0.1:1. Connection refused.",
        ),
        (ValueError("  first\nsecond\nthird  "), "ValueError: first"),
        (SourceError("\n\n  redis: down  \r\nmore"), "redis: down"),  # ours: said as written
        (TimeoutError(), "TimeoutError"),
        (RuntimeError("   \n  "), "RuntimeError"),
    ],
)
def test_first_line_is_the_type_and_the_first_line_of_the_message(
    exc: BaseException, shown: str
) -> None:
    assert first_line(exc) == shown


def test_first_line_is_capped_whatever_the_exception_carries() -> None:
    shown = first_line(ValueError("x" * 10_000 + "\nsecret second line"))
    assert len(shown) == FIRST_LINE_MAX_CHARS
    assert shown.startswith("ValueError: xxx") and "secret" not in shown


def test_first_line_escapes_what_a_terminal_or_systemd_would_interpret() -> None:
    shown = first_line(ValueError("bad \x1b]0;evil\x07 \u202edesrever\rSTOPPING=1"))
    assert shown == "ValueError: bad \\x1b]0;evil\\x07 \\u202edesrever"

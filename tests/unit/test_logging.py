"""stderr_is_journal, the formatters (one safe line per message) and the URL credential filter."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import pytest

from supervisor.publish.logging import (
    JournalFormatter,
    MaskUrlCredentials,
    SafeFormatter,
    stderr_is_journal,
)
from supervisor.text import LOG_MESSAGE_MAX_CHARS


class FdStream:
    """Stands in for sys.stderr: only `fileno()` is used."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def fileno(self) -> int:
        return self.fd


def identity(fd: int) -> str:
    stat = os.fstat(fd)
    return f"{stat.st_dev}:{stat.st_ino}"


def record(level: int, message: str) -> logging.LogRecord:
    return logging.LogRecord("supervisor.test", level, __file__, 1, message, None, None)


@pytest.fixture
def real_stderr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stderr", FdStream(2))


@pytest.mark.usefixtures("real_stderr")
def test_journal_when_journal_stream_names_stderr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOURNAL_STREAM", identity(2))
    assert stderr_is_journal() is True


@pytest.mark.usefixtures("real_stderr")
@pytest.mark.parametrize("value", ["", "garbage", "1:", ":1", "0:0"])
def test_not_journal_when_journal_stream_does_not_match(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("JOURNAL_STREAM", value)
    assert stderr_is_journal() is False


@pytest.mark.usefixtures("real_stderr")
def test_not_journal_when_only_the_inode_or_device_matches(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    device, inode = identity(2).split(":")
    monkeypatch.setenv("JOURNAL_STREAM", f"{device}:{int(inode) + 1}")
    assert stderr_is_journal() is False
    monkeypatch.setenv("JOURNAL_STREAM", f"{int(device) + 1}:{inode}")
    assert stderr_is_journal() is False


@pytest.mark.usefixtures("real_stderr")
def test_not_journal_without_journal_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    assert stderr_is_journal() is False


def test_not_journal_when_stderr_was_redirected(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("JOURNAL_STREAM", identity(2))  # inherited from a journald parent
    with (tmp_path / "log").open("w") as elsewhere:
        monkeypatch.setattr(sys, "stderr", elsewhere)
        assert stderr_is_journal() is False


def test_not_journal_when_stderr_has_no_descriptor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOURNAL_STREAM", identity(2))
    monkeypatch.setattr(sys, "stderr", object())
    assert stderr_is_journal() is False


@pytest.mark.parametrize(
    ("level", "prefix"),
    [
        (logging.CRITICAL, "<2>"),
        (logging.ERROR, "<3>"),
        (logging.WARNING, "<4>"),
        (logging.INFO, "<6>"),
        (logging.DEBUG, "<7>"),
    ],
)
def test_journal_formatter_prefixes_the_priority(level: int, prefix: str) -> None:
    text = JournalFormatter("%(name)s: %(message)s").format(record(level, "hello"))
    assert text == f"{prefix}supervisor.test: hello"


def test_journal_formatter_keeps_a_message_on_one_line() -> None:
    text = JournalFormatter("%(message)s").format(record(logging.ERROR, "one\ntwo\nthree"))
    assert text == "<3>one\\x0atwo\\x0athree"


def test_journal_formatter_prefixes_traceback_lines() -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        entry = record(logging.ERROR, "failed")
        entry.exc_info = sys.exc_info()
    lines = JournalFormatter("%(message)s").format(entry).split("\n")
    assert len(lines) > 2
    assert all(line.startswith("<3>") for line in lines)
    assert lines[-1] == "<3>RuntimeError: boom"


EVIL = "reason: \nWATCHDOG=trigger\nSTOPPING=1 \x1b]0;evil\x07 \u202eSPX \x9b31m"


def test_outside_text_in_a_message_stays_one_journal_line() -> None:
    entry = logging.LogRecord("supervisor.x", logging.WARNING, __file__, 1, "got %s", (EVIL,), None)
    text = JournalFormatter("%(name)s: %(message)s").format(entry)
    assert text.startswith("<4>supervisor.x: got reason: \\x0aWATCHDOG=trigger\\x0aSTOPPING=1")
    assert len(text.split("\n")) == 1
    assert not any(c in text for c in "\x1b\x07\u202e\x9b\r")


def test_a_ten_kilobyte_message_is_cut() -> None:
    text = JournalFormatter("%(message)s").format(record(logging.INFO, "x" * 10_000))
    assert text == "<6>" + "x" * (LOG_MESSAGE_MAX_CHARS - 1) + "…"


def test_a_traceback_of_outside_text_keeps_a_prefix_on_every_line() -> None:
    try:
        raise RuntimeError(EVIL)
    except RuntimeError:
        entry = record(logging.ERROR, "failed")
        entry.exc_info = sys.exc_info()
    lines = JournalFormatter("%(message)s").format(entry).split("\n")
    assert lines[1] == "<3>Traceback (most recent call last):"
    assert lines[2].startswith('<3>  File "')
    assert all(line.startswith("<3>") for line in lines)
    assert lines[-1].startswith("<3>RuntimeError: reason: \\x0aWATCHDOG=trigger\\x0aSTOPPING=1")
    assert not any("\x1b" in line or "\u202e" in line for line in lines)


def test_chained_and_grouped_exceptions_keep_their_shape_with_one_line_messages() -> None:
    try:
        try:
            raise ValueError("first\nforged line")
        except ValueError as exc:
            raise ExceptionGroup("group\nforged", [KeyError("k\nforged")]) from exc
    except ExceptionGroup:
        entry = record(logging.ERROR, "failed")
        entry.exc_info = sys.exc_info()
    lines = JournalFormatter("%(message)s").format(entry).split("\n")
    assert all(line.startswith("<3>") for line in lines)
    assert not any(line.removeprefix("<3>").lstrip(" |+-").startswith("forged") for line in lines)
    assert "<3>The above exception was the direct cause of the following exception:" in lines
    assert "<3>ValueError: first\\x0aforged line" in lines


def test_the_terminal_formatter_escapes_too() -> None:
    text = SafeFormatter("%(levelname)s %(message)s").format(record(logging.WARNING, EVIL))
    assert len(text.split("\n")) == 1 and "\x1b" not in text


def test_formatting_leaves_the_record_for_other_handlers_as_it_was() -> None:
    entry = record(logging.WARNING, EVIL)
    JournalFormatter("%(message)s").format(entry)
    assert entry.getMessage() == EVIL


def test_the_filter_masks_url_credentials_in_a_library_record() -> None:
    line = 'HTTP Request: GET %s "HTTP/1.1 200 OK"'
    url = "http://u:SECRET456@127.0.0.1:9/h?token=SECRET123&x=1"
    entry = logging.LogRecord("httpx", logging.INFO, __file__, 1, line, (url,), None)
    assert MaskUrlCredentials().filter(entry) is True
    assert entry.getMessage() == (
        "HTTP Request: GET http://**********@127.0.0.1:9/h?token=**********&x=**********"
        ' "HTTP/1.1 200 OK"'
    )


def test_the_filter_masks_url_credentials_in_a_traceback() -> None:
    try:
        raise ValueError("Client error for url 'https://venue/x?api_key=SECRET789'")
    except ValueError:
        entry = record(logging.ERROR, "failed")
        entry.exc_info = sys.exc_info()
    MaskUrlCredentials().filter(entry)
    text = JournalFormatter("%(message)s").format(entry)
    assert "SECRET789" not in text and "api_key=**********" in text


def test_the_filter_lets_arguments_that_do_not_fit_through() -> None:
    entry = logging.LogRecord("x", logging.INFO, __file__, 1, "%d", ("not a number",), None)
    assert MaskUrlCredentials().filter(entry) is True

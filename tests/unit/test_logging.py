"""stderr_is_journal and JournalFormatter."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import pytest

from supervisor.publish.logging import JournalFormatter, stderr_is_journal


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


def test_journal_formatter_prefixes_every_line() -> None:
    text = JournalFormatter("%(message)s").format(record(logging.ERROR, "one\ntwo\nthree"))
    assert text.split("\n") == ["<3>one", "<3>two", "<3>three"]


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

"""Logging to stderr, with journald priority prefixes (<3> error ... <7> debug) under systemd.

systemd sets JOURNAL_STREAM to "<device>:<inode>" of the stream it connected to stderr; a
child whose stderr was redirected elsewhere inherits the variable, so compare it with the
real stderr rather than trusting its presence.

Messages carry text from outside (reasons, exception texts, Redis values): the formatters make
each message one safe line (supervisor/text.py), so nothing forges a journal line or reaches a
terminal as an escape sequence. A traceback keeps its lines, each with its <N> prefix; the
exception messages in it are made one line each. Libraries log URLs (httpx: every request,
at INFO): a filter on the handler masks the credentials in any URL of any record, ours or a
library's.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from types import TracebackType

from supervisor.secrets import mask_urls
from supervisor.text import LOG_MESSAGE_MAX_CHARS, safe_line, safe_lines

_PRIORITY = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}


def stderr_is_journal() -> bool:
    expected = os.environ.get("JOURNAL_STREAM", "")
    device, _, inode = expected.partition(":")
    try:
        stat = os.fstat(sys.stderr.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return bool(inode) and f"{stat.st_dev}:{stat.st_ino}" == f"{device}:{inode}"


ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None] | tuple[None, None, None]


class SafeFormatter(logging.Formatter):
    """The message as one safe line of at most LOG_MESSAGE_MAX_CHARS; a traceback or stack
    as safe lines. Formats a copy: other handlers see the record as it was logged."""

    def format(self, record: logging.LogRecord) -> str:
        return super().format(self._safe_copy(record))

    def formatException(self, ei: ExcInfo) -> str:
        return format_traceback(ei)

    def _safe_copy(self, record: logging.LogRecord) -> logging.LogRecord:
        safe = logging.makeLogRecord(record.__dict__)
        safe.msg, safe.args = safe_line(record.getMessage(), LOG_MESSAGE_MAX_CHARS), None
        if record.exc_info and not record.exc_text:
            safe.exc_text = self.formatException(record.exc_info)
        if safe.exc_text:
            safe.exc_text = safe_lines(safe.exc_text, LOG_MESSAGE_MAX_CHARS)
        if record.stack_info:
            safe.stack_info = safe_lines(record.stack_info, LOG_MESSAGE_MAX_CHARS)
        return safe


def format_traceback(ei: ExcInfo) -> str:
    """The traceback as Python prints it, except that each exception message (outside text,
    maybe several lines: a forged log line) is one line. Frames and headings are our code's
    text and keep their lines."""
    chunks = traceback.TracebackException(*ei).format()
    return "".join(_frame_or_one_line(chunk) for chunk in chunks).rstrip("\n")


def _frame_or_one_line(chunk: str) -> str:
    body = chunk.lstrip(" |+-")  # an exception group's margin
    if body.startswith(('File "', "Traceback (most recent call last)", "\n")):
        return chunk  # a frame, the heading, "The above exception was the direct cause..."
    return safe_line(chunk.removesuffix("\n"), LOG_MESSAGE_MAX_CHARS) + "\n"


class JournalFormatter(SafeFormatter):
    """`<N>message`: journald reads the priority from the prefix; it adds its own time."""

    def format(self, record: logging.LogRecord) -> str:
        priority = _PRIORITY.get(record.levelno, 6)
        text = super().format(record)
        return "\n".join(f"<{priority}>{line}" for line in text.split("\n"))


class MaskUrlCredentials(logging.Filter):
    """Masks URL credentials (supervisor/secrets.py) in a record's message, traceback and
    stack, whoever logged it. Changes the record itself, so no later handler sees them."""

    def filter(self, record: logging.LogRecord) -> bool:
        _mask_message(record)
        if record.exc_info and not record.exc_text:
            record.exc_text = format_traceback(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_urls(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_urls(record.stack_info)
        return True


def _mask_message(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except (TypeError, ValueError):  # arguments that do not fit: the handler reports that
        return
    masked = mask_urls(message)
    if masked != message:
        record.msg, record.args = masked, None


def setup_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if stderr_is_journal():
        handler.setFormatter(JournalFormatter("%(name)s: %(message)s"))
    else:
        handler.setFormatter(SafeFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(MaskUrlCredentials())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # APScheduler logs every job run at INFO: once a second per watchdog is noise. httpx logs
    # every request with its full URL at INFO (httpcore: each step at DEBUG): noise too, and
    # a URL may carry a token; the filter masks it, these keep the journal quiet besides.
    for noisy in ("apscheduler", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def setup_cli_logging() -> None:
    """One-shot commands: warnings and errors, made safe and masked like the daemon's. Like
    logging.basicConfig, leaves a logging setup already in place (a test's capture) alone."""
    if not logging.getLogger().handlers:
        setup_logging("WARNING")

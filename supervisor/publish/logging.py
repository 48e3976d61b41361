"""Logging to stderr, with journald priority prefixes (<3> error ... <7> debug) under systemd.

systemd sets JOURNAL_STREAM to "<device>:<inode>" of the stream it connected to stderr; a
child whose stderr was redirected elsewhere inherits the variable, so compare it with the
real stderr rather than trusting its presence.
"""

from __future__ import annotations

import logging
import os
import sys

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


class JournalFormatter(logging.Formatter):
    """`<N>message`: journald reads the priority from the prefix; it adds its own time."""

    def format(self, record: logging.LogRecord) -> str:
        priority = _PRIORITY.get(record.levelno, 6)
        text = super().format(record)
        return "\n".join(f"<{priority}>{line}" for line in text.splitlines())


def setup_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if stderr_is_journal():
        handler.setFormatter(JournalFormatter("%(name)s: %(message)s"))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # APScheduler logs every job run at INFO: once a second per watchdog is noise.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)

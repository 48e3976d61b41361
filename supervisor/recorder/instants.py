"""Instants as the recorder's commands print them: local time with its offset, as `events`
does; a time no calendar can show (a recording is outside input) as plain seconds."""

from __future__ import annotations

from datetime import datetime


def stamp(at: float) -> str:
    try:
        return datetime.fromtimestamp(at).astimezone().isoformat(timespec="milliseconds")
    except (ValueError, OverflowError, OSError):
        return f"{at:.3f}"

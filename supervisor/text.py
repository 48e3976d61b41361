"""Text from outside, made safe to show: to systemd, to the journal, to a terminal.

A reason, a Redis value, a Prometheus label, an exception's message, an operator's
`--reason`: any of them may hold a newline (a forged journal line, an extra sd_notify
assignment such as `WATCHDOG=trigger`), an ANSI or OSC escape (a terminal that retitles,
hides or rewrites what the operator reads), a bidi override (text that reads backwards), an
unencodable lone surrogate, or ten kilobytes. `safe_line` escapes every such character as
`\\xNN` or `\\uNNNN` and caps the length with a visible `…`; printable text passes unchanged.
Escaping leaves backslashes alone, so applying it twice changes nothing more.
"""

from __future__ import annotations

# Caps, in characters of the escaped result.
STATUS_LINE_MAX_CHARS = 400  # systemd's STATUS= (`systemctl status` shows one line)
CELL_MAX_CHARS = 200  # one cell of a `check` or `status` table, one field of `status`
LOG_MESSAGE_MAX_CHARS = 2000  # one journal line
LINE_MAX_CHARS = 2000  # one line printed by a command

CUT_MARKER = "…"

# Bidirectional controls (Unicode TR9): they reorder what follows them on screen.
_BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f"  # Arabic letter mark, left-to-right and right-to-left marks
    "\u202a\u202b\u202c\u202d\u202e"  # embeddings, pop, overrides
    "\u2066\u2067\u2068\u2069"  # isolates
)
_LINE_SEPARATORS = frozenset("\u2028\u2029")


def is_unsafe(char: str) -> bool:
    """C0 and C1 controls, DEL, Unicode line/paragraph separators, bidi controls and lone
    surrogates (undecodable bytes from argv or a file: they cannot even be encoded)."""
    code = ord(char)
    return (
        code < 0x20
        or 0x7F <= code <= 0x9F
        or 0xD800 <= code <= 0xDFFF
        or char in _LINE_SEPARATORS
        or char in _BIDI_CONTROLS
    )


def escape_char(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def safe_line(text: str, max_chars: int = LINE_MAX_CHARS) -> str:
    """`text` as one line of at most `max_chars` characters: every unsafe character escaped,
    and when it is too long, cut (never inside an escape) and ended with `…`."""
    if len(text) <= max_chars and not any(is_unsafe(c) for c in text):
        return text
    room = max_chars - len(CUT_MARKER)
    pieces: list[str] = []
    used = 0
    # Each character shows as at least one, so a prefix of max_chars decides everything.
    for char in text[: max_chars + 1]:
        piece = escape_char(char) if is_unsafe(char) else char
        pieces.append(piece)
        used += len(piece)
    if used <= max_chars and len(text) <= max_chars:
        return "".join(pieces)
    return _cut(pieces, room) + CUT_MARKER


def _cut(pieces: list[str], room: int) -> str:
    kept: list[str] = []
    used = 0
    for piece in pieces:
        if used + len(piece) > room:
            break
        kept.append(piece)
        used += len(piece)
    return "".join(kept)


def safe_lines(text: str, max_chars_per_line: int = LINE_MAX_CHARS) -> str:
    """Text whose line breaks are ours (a traceback, a list of results): split at "\\n" only,
    each line made safe; every other separator (\\r, \\x0b, \\u2028 ...) is escaped."""
    return "\n".join(safe_line(line, max_chars_per_line) for line in text.split("\n"))

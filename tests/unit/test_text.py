"""safe_line / safe_lines: text from outside, made safe to show to systemd, the journal or a
terminal."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from supervisor.text import CUT_MARKER, is_unsafe, safe_line, safe_lines

UNSAFE_EXAMPLES = [
    "\n",
    "\r",
    "\x00",
    "\x07",
    "\x1b",
    "\x7f",
    "\x85",  # NEL: a line break to some terminals and to str.splitlines
    "\x9b",  # CSI: an escape sequence without ESC on 8-bit terminals
    "\u2028",
    "\u2029",
    "\u202e",  # right-to-left override
    "\u2066",
    "\u200f",
    "\udcff",  # a lone surrogate: undecodable bytes from argv
]

# Every code point, surrogates included, with the dangerous ones drawn often.
any_text = st.text(
    alphabet=st.one_of(st.characters(exclude_categories=()), st.sampled_from(UNSAFE_EXAMPLES)),
    max_size=600,
)
PRINTABLE_ASCII = string.ascii_letters + string.digits + string.punctuation + " "


def has_no_unsafe_character(text: str) -> bool:
    return not any(is_unsafe(c) for c in text) and len(text.splitlines()) <= 1


@given(text=any_text, max_chars=st.integers(min_value=1, max_value=500))
def test_any_text_becomes_one_safe_line_within_the_cap(text: str, max_chars: int) -> None:
    shown = safe_line(text, max_chars)
    assert has_no_unsafe_character(shown)
    assert "\n" not in shown
    assert len(shown) <= max_chars
    shown.encode("utf-8")  # no lone surrogate left: it can be sent and printed


@given(text=st.text(alphabet=PRINTABLE_ASCII, max_size=300))
def test_printable_ascii_within_the_cap_passes_unchanged(text: str) -> None:
    assert safe_line(text, 300) == text


@given(text=any_text)
def test_escaping_twice_changes_nothing_more(text: str) -> None:
    once = safe_line(text, 10_000)
    assert safe_line(once, 10_000) == once


@given(text=any_text, max_chars=st.integers(min_value=1, max_value=500))
def test_a_cut_is_marked(text: str, max_chars: int) -> None:
    shown = safe_line(text, max_chars)
    if len(text) > max_chars:
        assert shown.endswith(CUT_MARKER)


@pytest.mark.parametrize("char", UNSAFE_EXAMPLES)
def test_each_unsafe_character_is_escaped_visibly(char: str) -> None:
    shown = safe_line(f"a{char}b")
    assert shown.startswith("a\\") and shown.endswith("b")
    assert char not in shown


def test_escapes_read_like_python_escapes() -> None:
    evil = "ok\nWATCHDOG=trigger\x1b]0;evil\x07\u202eabc"
    assert safe_line(evil) == "ok\\x0aWATCHDOG=trigger\\x1b]0;evil\\x07\\u202eabc"


def test_a_cut_never_splits_an_escape() -> None:
    assert safe_line("abcdefgh\x1b", 10) == "abcdefgh…"
    assert safe_line("abcdef\x1bxyz", 10) == "abcdef…"


def test_a_ten_kilobyte_reason_is_cut_with_a_marker() -> None:
    shown = safe_line("x" * 10_000, 400)
    assert shown == "x" * 399 + CUT_MARKER


def test_non_ascii_text_passes_unchanged() -> None:
    assert safe_line("SPX age 17.2s > 15s — 東京 ✓") == "SPX age 17.2s > 15s — 東京 ✓"


def test_safe_lines_keeps_our_line_breaks_and_escapes_the_rest() -> None:
    assert safe_lines("one\ntwo\rthree\u2028four") == "one\ntwo\\x0dthree\\u2028four"

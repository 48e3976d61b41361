"""tick_freshness's direct lookup of a plain jmespath path gives what jmespath gives."""

from __future__ import annotations

from typing import Any

import jmespath
import pytest
from hypothesis import given
from hypothesis import strategies as st

from supervisor.watchdogs.tick_parse import field_chain, look_up

NAMES = st.sampled_from(["ts", "meta", "a", "x-y"])
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(NAMES, inner, max_size=4),
    max_leaves=12,
)


def quoted(name: str) -> str:
    return f'"{name}"' if "-" in name else name


@given(JSON, st.lists(NAMES, min_size=1, max_size=4))
def test_a_chain_of_fields_looks_up_what_jmespath_finds(document: Any, names: list[str]) -> None:
    expression = jmespath.compile(".".join(quoted(n) for n in names))
    chain = field_chain(expression.parsed)
    assert chain == tuple(names)
    assert look_up(document, chain) == expression.search(document)


@pytest.mark.parametrize("expression", ["a[0]", "a || b", "a.b[0].c", "length(a)", "*.ts"])
def test_anything_else_is_left_to_jmespath(expression: str) -> None:
    assert field_chain(jmespath.compile(expression).parsed) is None

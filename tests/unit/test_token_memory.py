"""state_dir/fencing-token.json, the highest fencing token an instance has seen, read back as
outside input: whatever the file holds, loading never raises; a readable number is kept, and
anything else is set aside (renamed, counted) and means 0. Written files read back the same."""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from supervisor import stored
from supervisor.ha.token_memory import MEMORY_FILE, TokenMemory

EXAMPLES = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=300, max_value=4000).map(lambda n: 10**n),
    st.just(2**63 - 1),
    st.just(2**63),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
)
any_json = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=10,
)
near_misses = st.one_of(
    st.dictionaries(st.just("highest_token"), any_json, min_size=1),
    st.fixed_dictionaries({"highest_token": scalars}, optional={"other": any_json}),
)
file_bytes = st.one_of(
    st.one_of(any_json, near_misses).map(lambda v: json.dumps(v).encode()),
    st.integers(min_value=1_000, max_value=50_000).map(lambda n: b"[" * n + b"]" * n),
    st.binary(max_size=40),
)


def expected(raw: bytes) -> int | None:
    """What a correct reader keeps: a JSON object whose highest_token is an int in 0..2**63-1."""
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    token = value.get("highest_token") if isinstance(value, dict) else None
    ok = isinstance(token, int) and not isinstance(token, bool) and 0 <= token <= 2**63 - 1
    return token if ok else None


@EXAMPLES
@given(raw=file_bytes)
def test_any_file_loads_as_its_token_or_is_set_aside_as_zero(raw: bytes) -> None:
    with tempfile.TemporaryDirectory() as name:
        directory = Path(name)
        (directory / MEMORY_FILE).write_bytes(raw)
        memory = TokenMemory(directory)
        known = memory.load()
        keep = expected(raw)
        left = sorted(p.name for p in directory.iterdir())
        if keep is not None:
            assert known == memory.highest == keep and left == [MEMORY_FILE]
        else:
            assert known == memory.highest == 0
            assert len(left) == 1 and left[0].startswith(f"{MEMORY_FILE}.unreadable-")
            assert (directory / left[0]).read_bytes() == raw  # kept for an operator


@EXAMPLES
@given(tokens=st.lists(st.integers(min_value=0, max_value=2**63 - 1), max_size=8))
def test_the_highest_token_seen_survives_a_restart(tokens: list[int]) -> None:
    with tempfile.TemporaryDirectory() as name:
        directory = Path(name) / "state"
        memory = TokenMemory(directory)
        memory.load()
        for token in tokens:
            if memory.see(token):
                memory.save()
            assert not memory.unsaved()
        restarted = TokenMemory(directory)
        assert restarted.load() == max(tokens, default=0)


def test_a_token_not_above_the_highest_is_not_written_again(tmp_path: Path) -> None:
    memory = TokenMemory(tmp_path)
    assert memory.see(7) and memory.unsaved()
    memory.save()
    assert not memory.see(7) and not memory.see(3) and not memory.see(None)
    assert not memory.unsaved()


def test_a_missing_file_means_zero_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="supervisor"):
        assert TokenMemory(tmp_path / "never-written").load() == 0
    assert any(MEMORY_FILE in r.getMessage() for r in caplog.records)


def test_an_unreadable_file_is_counted_and_means_zero(tmp_path: Path) -> None:
    (tmp_path / MEMORY_FILE).write_bytes(b'{"highest_token": "42"}')
    before = stored.SIGHTINGS.counts().get(MEMORY_FILE, 0)
    assert TokenMemory(tmp_path).load() == 0
    assert stored.SIGHTINGS.counts().get(MEMORY_FILE, 0) == before + 1
    assert not (tmp_path / MEMORY_FILE).exists()


def test_a_file_that_cannot_be_read_means_zero(tmp_path: Path) -> None:
    (tmp_path / MEMORY_FILE).mkdir()  # IsADirectoryError: an OSError, whoever runs the test
    assert TokenMemory(tmp_path).load() == 0
    assert (tmp_path / MEMORY_FILE).is_dir()  # nothing set aside: it was not read at all

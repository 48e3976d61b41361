"""One identity per instance, the pure parts: when another process holding this instance id
has shown it is alive; what a duplicate may do; the state_dir lock."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from supervisor.daemon.lease_keeper import HoldSeen, renewed
from supervisor.ha.leadership import Leadership, Role
from supervisor.ha.lease import IdentityTaken, new_boot_nonce
from supervisor.state_dir_lock import LOCK_FILE, StateDirInUse, lock_state_dir

nonces = st.sampled_from(["boot-1", "boot-2", "", "x" * 40])
seconds = st.floats(min_value=0, max_value=300, allow_nan=False)
fractions = st.floats(min_value=0, max_value=1)


def read(
    owner: str, expiry: float, sent: float, round_trip: float, when: float
) -> tuple[HoldSeen, float]:
    """One read of a hold that expires at `expiry`, sent at `sent`, answered `round_trip`
    later, Redis measuring its time to live at a fraction `when` of the way (in whole
    milliseconds, as PTTL answers); and when the answer came."""
    measured = sent + when * round_trip
    assume(measured < expiry)  # after that, the hold is gone: no IdentityTaken
    remaining_ms = math.floor((expiry - measured) * 1000)
    received = sent + round_trip
    return HoldSeen.of(IdentityTaken(owner, remaining_ms / 1000), sent, received), received


@given(
    owner=nonces,
    expiry=st.floats(min_value=5, max_value=300),
    start=st.floats(min_value=0, max_value=4),
    gap=seconds,
    trips=st.tuples(seconds, seconds),
    whens=st.tuples(fractions, fractions),
)
def test_a_hold_nobody_renews_never_looks_renewed(
    owner: str,
    expiry: float,
    start: float,
    gap: float,
    trips: tuple[float, float],
    whens: tuple[float, float],
) -> None:
    """However slow Redis answers and whenever the reads are: no false proof of life (a
    dead predecessor's id would be refused after a crash and restart)."""
    first, received = read(owner, expiry, start, trips[0] / 100, whens[0])
    second, _ = read(owner, expiry, received + gap / 100, trips[1] / 100, whens[1])
    assert not renewed(first, second)


@given(
    owner=nonces,
    expiry=st.floats(min_value=5, max_value=100),
    start=st.floats(min_value=0, max_value=4),
    trips=st.tuples(seconds, seconds),
    whens=st.tuples(fractions, fractions),
    renewal=st.floats(min_value=0.003, max_value=100),
)
def test_a_hold_renewed_by_more_than_the_round_trips_is_seen_renewed(
    owner: str,
    expiry: float,
    start: float,
    trips: tuple[float, float],
    whens: tuple[float, float],
    renewal: float,
) -> None:
    first_trip, second_trip = trips[0] / 100, trips[1] / 100
    first, received = read(owner, expiry, start, first_trip, whens[0])
    moved = expiry + renewal + first_trip + second_trip
    second, _ = read(owner, moved, received, second_trip, whens[1])
    assert renewed(first, second)


@given(before=nonces, after=nonces, left=st.none() | seconds, now=seconds)
def test_another_owner_is_proof_of_life_too(
    before: str, after: str, left: float | None, now: float
) -> None:
    first = HoldSeen.of(IdentityTaken(before, left), now, now)
    second = HoldSeen.of(IdentityTaken(after, left), now, now)
    assert renewed(first, second) == (before != after)


def test_a_hold_that_never_expires_proves_nothing() -> None:
    first = HoldSeen.of(IdentityTaken("by-hand", None), 1.0, 1.1)
    second = HoldSeen.of(IdentityTaken("by-hand", None), 9.0, 9.1)
    assert not renewed(first, second)


def test_boot_nonces_differ() -> None:
    assert len({new_boot_nonce() for _ in range(1000)}) == 1000


@given(now=st.floats(min_value=0, max_value=1e6, allow_nan=False), act=st.booleans())
def test_a_duplicate_neither_leads_nor_acts(now: float, act: bool) -> None:
    leadership = Leadership("a", enabled=True, lease_ttl_s=5.0, act_without_lease=act)
    leadership.won(7, now)
    assert leadership.leads(now)
    assert leadership.duplicate() is True  # it led until now: say it lost the lead
    assert leadership.role is Role.DUPLICATE and leadership.token is None
    assert not leadership.leads(now) and not leadership.may_act(now)
    assert leadership.lease_age_s(now) is None
    assert leadership.role_name(now) == "duplicate"
    assert leadership.duplicate() is False  # already one: no second "lost"


def test_the_state_dir_lock_refuses_a_second_holder_and_names_the_first(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    held = lock_state_dir(state_dir)
    assert held is not None
    assert (state_dir / LOCK_FILE).read_text() == f"{os.getpid()}\n"
    with pytest.raises(
        StateDirInUse, match=rf"in use by another trading-supervisor \(PID {os.getpid()}\)"
    ):
        lock_state_dir(state_dir)  # flock: per open file, so this process conflicts too
    os.close(held)  # what the end of the process does
    again = lock_state_dir(state_dir)
    assert again is not None
    os.close(again)


def test_an_unreadable_pid_is_said_so(tmp_path: Path) -> None:
    held = lock_state_dir(tmp_path)
    assert held is not None
    (tmp_path / LOCK_FILE).write_bytes(b"\xff\n")
    with pytest.raises(StateDirInUse, match=r"PID unknown"):
        lock_state_dir(tmp_path)
    os.close(held)


def test_a_state_dir_that_cannot_be_created_is_not_locked_and_not_fatal(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert lock_state_dir(blocker / "state") is None

"""One identity per instance, the pure parts: when another process holding this instance id
has shown it is alive; what a duplicate may do; the state_dir lock."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from supervisor.daemon.lease_keeper import renewed
from supervisor.ha.leadership import Leadership, Role
from supervisor.ha.lease import IdentityTaken, new_boot_nonce
from supervisor.state_dir_lock import LOCK_FILE, StateDirInUse, lock_state_dir

nonces = st.sampled_from(["boot-1", "boot-2", "", "x" * 40])
ttls = st.floats(min_value=0, max_value=300, allow_nan=False)


@given(owner=nonces, before_s=ttls, after_s=ttls)
def test_a_hold_whose_time_to_live_grew_was_renewed(
    owner: str, before_s: float, after_s: float
) -> None:
    """Redis only ever lowers a key's TTL on its own: a higher one is a renewal."""
    assert renewed(IdentityTaken(owner, before_s), IdentityTaken(owner, after_s)) == (
        after_s > before_s
    )


@given(before=nonces, after=nonces, before_s=ttls, after_s=ttls)
def test_another_owner_is_proof_of_life_too(
    before: str, after: str, before_s: float, after_s: float
) -> None:
    if before != after:
        assert renewed(IdentityTaken(before, before_s), IdentityTaken(after, after_s))


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

"""The lease as this instance believes it (supervisor/ha/leadership.py): properties over any
sequence of claims answered, refused or unanswered, in monotonic order."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from supervisor.ha.leadership import LEASE_MARGIN_FRACTION, Leadership, Role

TTL_S = 5.0

# (kind, delay since the previous event in seconds, token)
events = st.lists(
    st.tuples(
        st.sampled_from(["won", "lost", "unreachable"]),
        st.floats(0, 20, allow_nan=False),
        st.integers(1, 5),
    ),
    max_size=30,
)


def replay(
    history: list[tuple[str, float, int]], act_without_lease: bool
) -> tuple[Leadership, float, float | None]:
    """The leadership after `history`, the time of the last event, and when the last
    successful claim was sent (None if none)."""
    leadership = Leadership("me", True, TTL_S, act_without_lease)
    now, last_won = 0.0, None
    for kind, delay, token in history:
        now += delay
        if kind == "won":
            leadership.won(token, now)
            last_won = now
        elif kind == "lost":
            leadership.lost("other", token, now + token)  # the holder's lease: token seconds
        elif leadership.unreachable(now) or leadership.role is Role.NO_LEASE:
            last_won = None
    return leadership, now, last_won


@given(events, st.floats(0, 20, allow_nan=False), st.booleans())
def test_never_leads_past_its_deadline_by_its_own_clock(
    history: list[tuple[str, float, int]], later: float, act_without_lease: bool
) -> None:
    leadership, now, last_won = replay(history, act_without_lease)
    query = now + later
    if leadership.leads(query):
        assert leadership.role is Role.LEADER and last_won is not None
        assert query < last_won + TTL_S * (1 - LEASE_MARGIN_FRACTION)
        assert leadership.token is not None


@given(events, st.floats(0, 20, allow_nan=False), st.booleans())
def test_acts_only_as_leader_or_without_redis_when_allowed(
    history: list[tuple[str, float, int]], later: float, act_without_lease: bool
) -> None:
    leadership, now, _ = replay(history, act_without_lease)
    query = now + later
    if leadership.may_act(query):
        assert leadership.leads(query) or (leadership.role is Role.NO_LEASE and act_without_lease)
    if leadership.role is Role.FOLLOWER:
        assert not leadership.may_act(query) and leadership.token is None


@given(events)
def test_a_follower_knows_who_leads(history: list[tuple[str, float, int]]) -> None:
    leadership, _, _ = replay(history, True)
    if leadership.role is Role.FOLLOWER:
        assert leadership.leader == "other"


def test_a_leader_out_of_reach_keeps_acting_until_its_deadline_only() -> None:
    leadership = Leadership("me", True, TTL_S, act_without_lease=False)
    assert leadership.won(7, sent_at=100.0) is True
    deadline = 100.0 + TTL_S * (1 - LEASE_MARGIN_FRACTION)
    assert leadership.unreachable(deadline - 0.01) is False  # still within its lease
    assert leadership.may_act(deadline - 0.01)
    assert not leadership.may_act(deadline)  # lapsed: it stops, Redis unheard or not
    assert leadership.role_name(deadline) == "lapsed"
    assert leadership.unreachable(deadline) is True  # now it knows nobody holds a lease
    assert leadership.role is Role.NO_LEASE and not leadership.may_act(deadline)


def test_a_follower_out_of_reach_follows_until_the_holders_lease_would_run_out() -> None:
    """Nemesis seed 30: a follower SIGSTOPped for 1 s found its claim timed out and pressed
    the kill switch without a lease, 0.15 s after the leader had. One unanswered claim is
    no reason to act beside a holder whose lease still runs."""
    leadership = Leadership("me", True, TTL_S, act_without_lease=True)
    leadership.lost("other", 7, holder_until=104.0)
    assert leadership.unreachable(103.9) is False
    assert leadership.role_name(103.9) == "follower" and not leadership.may_act(103.9)
    assert leadership.unreachable(104.0) is False  # it never led
    assert leadership.role_name(104.0) == "no_lease" and leadership.may_act(104.0)


def test_a_duplicate_acts_on_nothing_redis_or_not() -> None:
    leadership = Leadership("me", True, TTL_S, act_without_lease=True)
    leadership.duplicate()
    assert leadership.unreachable(1e9) is False
    assert leadership.role is Role.DUPLICATE and not leadership.may_act(1e9)


def test_renewing_its_own_lapsed_lease_begins_acting_again() -> None:
    leadership = Leadership("me", True, TTL_S)
    assert leadership.won(3, sent_at=0.0) is True
    assert leadership.won(3, sent_at=1.0) is False  # a renewal: same term, no takeover
    assert leadership.won(3, sent_at=60.0) is True  # lapsed meanwhile: acts again
    assert leadership.won(4, sent_at=61.0) is True  # a new token is a new term


@pytest.mark.parametrize("act_without_lease", [True, False])
def test_with_ha_off_it_always_leads(act_without_lease: bool) -> None:
    leadership = Leadership("me", False, TTL_S, act_without_lease)
    assert leadership.role is Role.STANDALONE and leadership.leader == "me"
    assert leadership.leads(1e9) and leadership.may_act(1e9)

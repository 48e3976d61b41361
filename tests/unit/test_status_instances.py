"""`status`'s instances table (supervisor/cli_tables.py render_instances): who leads, how
many do, and whether each sees the leader's verdicts; every cell is outside text."""

from __future__ import annotations

import json
import time

from hypothesis import given
from hypothesis import strategies as st

from supervisor.cli_tables import render_instances
from supervisor.text import is_unsafe


def record(instance: str, role: str, verdicts: dict[str, str], token: str = "") -> dict[str, str]:
    return {
        "instance": instance,
        "role": role,
        "leader": "a",
        "fencing_token": token,
        "lease_age_s": "12.0" if role == "leader" else "",
        "trading_state": "ACTIVE",
        "health": "OK",
        "verdicts": json.dumps(verdicts),
        "version": "1",
        "updated_at": f"{time.time():.3f}",
    }


def test_one_leader_and_a_follower_that_sees_the_same() -> None:
    shown = render_instances(
        [record("a", "leader", {"w1": "OK"}, "7"), record("b", "follower", {"w1": "OK"})],
        time.time(),
    )
    title, _header, leader, follower = shown.splitlines()
    assert title == "instances: 2 live"
    assert leader.split()[:4] == ["a", "leader", "7", "12.0s"]
    assert "same as leader" in leader and "same as leader" in follower


def test_a_follower_that_sees_otherwise_is_named_with_what_differs() -> None:
    shown = render_instances(
        [
            record("a", "leader", {"w1": "OK", "w2": "OK"}, "7"),
            record("b", "follower", {"w1": "BREACH", "w2": "OK"}),
        ],
        time.time(),
    )
    assert "differ: w1=BREACH" in shown.splitlines()[-1]


def test_no_leader_and_two_leaders_are_said_in_the_title() -> None:
    followers = [record("a", "follower", {}), record("b", "no_lease", {})]
    assert render_instances(followers, time.time()).startswith("instances: 2 live, no leader")
    two = [record("a", "leader", {}, "7"), record("b", "leader", {}, "8")]
    assert "MORE THAN ONE LEADER" in render_instances(two, time.time()).splitlines()[0]


@given(st.text(max_size=300), st.text(max_size=300), st.text(max_size=300))
def test_every_cell_is_one_safe_line(instance: str, role: str, verdicts: str) -> None:
    hostile = {
        **record("a", "leader", {}),
        "instance": instance,
        "role": role,
        "verdicts": verdicts,
    }
    shown = render_instances([hostile, record("b", "follower", {"w1": "OK"})], time.time())
    assert len(shown.splitlines()) == 4
    assert not any(is_unsafe(char) for char in shown if char != "\n")

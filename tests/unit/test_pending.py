"""Pending actions: what a crash mid-action leaves in state_dir, read back whole or not at all."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from supervisor.model import Decision, Origin, Status
from supervisor.pending import PENDING_FILE, PendingActions, order

DECISION = Decision(
    "spx",
    Status.CRITICAL,
    ("kill_api", "flag"),
    "SPX age 70s > 60s",
    "inc-1",
    1.7e9,
    escalated_from=("breaker",),
)


def test_an_order_survives_the_file_and_names_one_actuator(tmp_path: Path) -> None:
    pending = PendingActions(tmp_path)
    pending.add(order("kill_api", DECISION, after_reset=3))
    pending.save()  # the daemon hands content() to a worker thread (test_snapshot_file.py)
    (loaded,) = PendingActions(tmp_path).load()
    assert loaded.actuator == "kill_api"
    assert loaded.after_reset == 3
    assert loaded.decision.actuators == ("kill_api",)
    assert loaded.decision.incident_id == "inc-1"  # the same Idempotency-Key after a restart
    assert loaded.decision.severity is Status.CRITICAL
    assert loaded.decision.escalated_from == ("breaker",)
    assert loaded.decision.origin is Origin.WATCHDOG


def test_done_forgets_every_order_for_that_actuator_only(tmp_path: Path) -> None:
    """An earlier incident's failed order is moot once the actuator is engaged."""
    pending = PendingActions(tmp_path)
    pending.add(order("kill_api", DECISION, None))
    pending.add(order("kill_api", replace(DECISION, incident_id="inc-2"), None))
    pending.add(order("flag", DECISION, None))
    assert pending.done("kill_api")
    assert not pending.done("kill_api")  # nothing left to forget: no write
    pending.save()
    assert [o.actuator for o in PendingActions(tmp_path).load()] == ["flag"]


@pytest.mark.parametrize(
    ("after_reset", "reset", "voided"),
    [
        (0, None, False),  # never reset
        (0, 1, True),  # reset after the order
        (4, 4, False),  # the reset it already knew of
        (4, 3, False),
        (None, 9, False),  # ordered while resets were unknown: errs toward acting
    ],
)
def test_only_a_later_reset_voids_an_order(
    tmp_path: Path, after_reset: int | None, reset: int | None, voided: bool
) -> None:
    pending = PendingActions(tmp_path)
    pending.add(order("kill_api", DECISION, after_reset))
    resets = {} if reset is None else {"kill_api": reset}
    assert bool(pending.void(resets)) is voided
    pending.save()
    assert len(PendingActions(tmp_path).load()) == (0 if voided else 1)


@pytest.mark.parametrize("content", ["not json", "[{}]", '[{"actuator": "x", "decision": 1}]'])
def test_an_unreadable_file_is_said_loudly_and_read_as_nothing(
    tmp_path: Path, content: str, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / PENDING_FILE).write_text(content)
    assert PendingActions(tmp_path).load() == []
    assert "actions a crash interrupted are lost" in caplog.text

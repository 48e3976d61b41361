"""Actions ordered but not done yet, kept in state_dir so that a crash cannot lose them.

Before an actuator is called, the order is written to `state_dir/pending-actions.json`
(temp file, fsync, atomic rename, in a worker thread; the action waits for it up to
ORDER_ON_DISK_BUDGET_S, 50 ms, in daemon/engagements.py, then goes out anyway: a disk that
takes seconds must not hold a kill switch); once the action has succeeded (and is latched), the
actuator's orders are removed. A daemon that died mid-action (SIGKILL, OOM, power loss)
finds the order there when it starts and gives it again with the same incident id, so an
HTTP kill switch sees the same Idempotency-Key: the action completes, is never lost because
the condition cleared while the daemon was down, and is never doubled under a second key.

A manual reset voids the orders before it. Resets are numbered by `{ns}:seq` (latch.py),
never by a clock: an order keeps the number of its actuator's last reset known when it was
given, and a reset numbered higher voids it. An order given while no reset number was known
counts as newer than every reset, like a latch not yet numbered: it errs toward acting.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from supervisor import stored
from supervisor.model import Decision, Origin, Status
from supervisor.snapshot_file import write_atomically
from supervisor.text import safe_line

log = logging.getLogger(__name__)

PENDING_FILE = "pending-actions.json"


@dataclass(frozen=True)
class Order:
    """One actuator's part of a decision, not done yet."""

    actuator: str
    decision: Decision  # its `actuators` is just (actuator,)
    after_reset: int | None  # the actuator's last reset number known when it was ordered

    @property
    def key(self) -> str:
        return f"{self.decision.incident_id}:{self.actuator}"

    def voided_by(self, reset_seq: int | None) -> bool:
        """True when a reset numbered `reset_seq` came after this order."""
        if reset_seq is None or self.after_reset is None:
            return False
        return reset_seq > self.after_reset

    def to_dict(self) -> dict[str, Any]:
        decision = asdict(self.decision)
        decision["severity"] = self.decision.severity.name
        decision["origin"] = self.decision.origin.value
        return {"actuator": self.actuator, "after_reset": self.after_reset, "decision": decision}

    @classmethod
    def from_dict(cls, value: object) -> Order:
        """Raises Unreadable (stored.py) for anything that is not a whole order."""
        data = stored.mapping(value, "an order")
        raw = stored.mapping(data.get("decision"), "its decision")
        decision = Decision(
            watchdog=stored.text(raw, "watchdog"),
            severity=_member(Status, stored.text(raw, "severity"), "severity"),
            actuators=_names(raw.get("actuators"), "actuators"),
            reason=stored.text(raw, "reason"),
            incident_id=stored.text(raw, "incident_id"),
            at=stored.number(raw, "at"),
            escalated_from=_names(raw.get("escalated_from", []), "escalated_from"),
            origin=_origin(stored.text(raw, "origin", Origin.WATCHDOG.value)),
            fencing_token=stored.optional_counter(raw, "fencing_token"),
        )
        after_reset = stored.optional_counter(data, "after_reset")
        return cls(stored.text(data, "actuator"), decision, after_reset)


def _member(enum: type[Status], name: str, what: str) -> Status:
    if name not in enum.__members__:
        raise stored.Unreadable(f"{what} {safe_line(name, 20)!r} is unknown")
    return enum[name]


def _origin(value: str) -> Origin:
    try:
        return Origin(value)
    except ValueError:
        raise stored.Unreadable(f"origin {safe_line(value, 20)!r} is unknown") from None


def _names(value: object, what: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(name, str) for name in value):
        raise stored.Unreadable(f"{what} is not a list of names")
    return tuple(value)


def order(actuator: str, decision: Decision, after_reset: int | None) -> Order:
    return Order(actuator, replace(decision, actuators=(actuator,)), after_reset)


class PendingActions:
    """The orders not done yet, in memory. The file holds them all, rewritten whole: the
    daemon hands `content()` to a worker thread after each change (supervisor/snapshot_file.py,
    daemon/engagements.py), so that a busy disk never holds its loop."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / PENDING_FILE
        self._orders: dict[str, Order] = {}

    def add(self, pending: Order) -> None:
        """Remember `pending` until it is done (the file is written by the caller)."""
        self._orders[pending.key] = pending

    def done(self, actuator: str) -> bool:
        """Forget the orders for `actuator` once it is engaged: those of earlier incidents
        that failed are moot now. True when that changed anything."""
        kept = {k: o for k, o in self._orders.items() if o.actuator != actuator}
        changed = len(kept) != len(self._orders)
        self._orders = kept
        return changed

    def void(self, resets: dict[str, int]) -> list[Order]:
        """Forget the orders a later manual reset voided; return them."""
        voided = [o for o in self._orders.values() if o.voided_by(resets.get(o.actuator))]
        for gone in voided:
            del self._orders[gone.key]
        return voided

    def content(self) -> bytes:
        """What pending.json holds now."""
        return json.dumps([o.to_dict() for o in self._orders.values()], indent=1).encode()

    def load(self) -> list[Order]:
        """The orders a previous run left (and remember them). Never raises: an unreadable
        file, or one with an unreadable order, is said, counted and set aside
        (docs/operations.md, "Unreadable entries"); the orders in it that are readable are kept
        and written back."""
        then = "the actions a crash interrupted are lost"
        try:
            found = stored.read_file_guarded(self.path, PENDING_FILE, then)
        except OSError as exc:
            log.error("cannot read %s (%s): %s", self.path, exc, then)
            return []
        if found is None:
            return []
        raw, data = found
        if not isinstance(data, list):
            stored.unreadable_file(self.path, PENDING_FILE, raw, "not a JSON list", then)
            return []
        orders, bad = [], []
        for item in data:
            try:
                orders.append(Order.from_dict(item))
            except stored.Unreadable as exc:
                bad.append(str(exc))
        self._orders = {o.key: o for o in orders}
        if bad:
            stored.unreadable_file(self.path, PENDING_FILE, raw, "; ".join(bad[:3]), then)
            try:
                self.save()
            except OSError as exc:
                log.error("cannot write %s: %s", self.path, exc)
        return list(self._orders.values())  # one per incident and actuator, as remembered

    def save(self) -> None:
        """Write the file now, in this thread (at startup). Raises OSError."""
        write_atomically(self.path, self.content())

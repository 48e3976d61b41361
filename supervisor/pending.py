"""Actions ordered but not done yet, kept in state_dir so that a crash cannot lose them.

Before an actuator is called, the order is written to `state_dir/pending-actions.json`
(temp file, fsync, atomic rename); once the action has succeeded (and is latched), the
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
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from supervisor.model import Decision, Origin, Status

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
    def from_dict(cls, data: dict[str, Any]) -> Order:
        """Raises KeyError, TypeError or ValueError for anything that is not a whole order."""
        raw = data["decision"]
        after_reset = data.get("after_reset")
        if after_reset is not None and (
            isinstance(after_reset, bool) or not isinstance(after_reset, int)
        ):
            raise TypeError("after_reset must be an integer")
        decision = Decision(
            watchdog=str(raw["watchdog"]),
            severity=Status[str(raw["severity"])],
            actuators=tuple(str(name) for name in raw["actuators"]),
            reason=str(raw["reason"]),
            incident_id=str(raw["incident_id"]),
            at=float(raw["at"]),
            escalated_from=tuple(str(name) for name in raw.get("escalated_from", ())),
            origin=Origin(str(raw.get("origin", Origin.WATCHDOG.value))),
            fencing_token=_token(raw.get("fencing_token")),
        )
        return cls(str(data["actuator"]), decision, after_reset)


def _token(raw: object) -> int | None:
    if raw is not None and (isinstance(raw, bool) or not isinstance(raw, int)):
        raise TypeError("fencing_token must be an integer")
    return raw


def order(actuator: str, decision: Decision, after_reset: int | None) -> Order:
    return Order(actuator, replace(decision, actuators=(actuator,)), after_reset)


class PendingActions:
    """The orders not done yet: in memory, and in a file rewritten whole on every change."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / PENDING_FILE
        self._orders: dict[str, Order] = {}

    def add(self, pending: Order) -> None:
        """Remember `pending` durably before it is carried out. Raises OSError (disk full)."""
        self._orders[pending.key] = pending
        self.save()

    def done(self, actuator: str) -> None:
        """Forget the orders for `actuator` once it is engaged: those of earlier incidents
        that failed are moot now. Raises OSError (they are then carried out again after a
        restart: harmless, actions are idempotent)."""
        kept = {k: o for k, o in self._orders.items() if o.actuator != actuator}
        if len(kept) != len(self._orders):
            self._orders = kept
            self.save()

    def void(self, resets: dict[str, int]) -> list[Order]:
        """Forget the orders a later manual reset voided; return them. Raises OSError."""
        voided = [o for o in self._orders.values() if o.voided_by(resets.get(o.actuator))]
        for gone in voided:
            del self._orders[gone.key]
        if voided:
            self.save()
        return voided

    def load(self) -> list[Order]:
        """The orders a previous run left (and remember them). Never raises: an unreadable
        file is logged and set aside, the orders in it cannot be carried out."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            orders = [Order.from_dict(item) for item in data]
        except FileNotFoundError:
            return []
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.error("cannot read %s (%s): actions a crash interrupted are lost", self.path, exc)
            return []
        self._orders = {o.key: o for o in orders}
        return orders

    def save(self) -> None:
        """Write every order known now (also: again, once state_dir is writable again)."""
        payload = [o.to_dict() for o in self._orders.values()]
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        with temporary.open("w", encoding="utf-8") as handle:
            json.dump(payload, handle, indent=1)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.path)

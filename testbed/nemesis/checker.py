"""The nemesis checker: pure functions over a recorded `History`, one per invariant.

Each returns a `Verdict`: how many cases it checked, the violations, and the cases a
documented behaviour explains (counted and named, never silently dropped). The bounds come
from docs/operations.md:

- detection: with `trip_after = 2` a trip comes at most `breach + interval` after the last tick;
- takeover: a follower takes over within `lease_ttl` + one interval of the leader dying or
  hanging (a leader SIGSTOPped for less than that resumes and acts itself);
- Redis restarted empty or FLUSHALLed: the lease is claimed again (`lease_ttl` + interval);
- a clock step larger than 1 s is ignored (the steady clock) for 300 s; a smaller one is
  believed at once, so it moves a trip by at most its size;
- split brain (a leader SIGSTOPped past `lease_ttl`, any instance cut off from Redis, Redis
  away: `act_without_lease`, the lease key overwritten by an outside writer) may press a kill
  switch under a second Idempotency-Key, and the deposed leader's late order carries the lower
  token; so may a new leader whose predecessor's order Redis lost or that it could not read.

`slack_s` (Timing) is the allowance for process scheduling on a loaded machine.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import pairwise

from testbed.nemesis.history import History, Injected, TokenSeen, VenueRequest, Window

EARLY_S = 0.25  # a trip this long before breach is still "at breach" (two clocks, rounding)
RESET_GRACE_S = 0.5  # the recorder polls the breaker every 0.1 s; a reset takes a moment
EXIT_SEEN_S = 2.0  # the recorder notices an exit within this long
STEP_BELIEVED_S = 1.0  # supervisor/clock.py STEP_S: a smaller step is believed at once
STARTUP_S = 3.0  # a restarted daemon is up and has read Redis (a loaded machine)
HOUSEKEEPING_S = 1.0  # resets and real states are read every housekeeping pass
LEADER_FAULTS = ("sigstop", "sigkill", "blackhole", "garbage_file")


@dataclass
class Verdict:
    invariant: str
    checked: int = 0
    violations: list[str] = field(default_factory=list)
    explained: Counter[str] = field(default_factory=Counter)

    @property
    def ok(self) -> bool:
        return not self.violations


@dataclass(frozen=True)
class Trip:
    at_s: float
    source: str  # "venue" (a new Idempotency-Key) or "breaker" (a new incident in its history)
    ident: str


def trips(history: History) -> list[Trip]:
    """Each new venue key at its first arrival and each new breaker incident when first seen."""
    found: dict[tuple[str, str], float] = {}
    for request in history.venue:
        found.setdefault(("venue", request.key), request.at_s)
    for entry in history.breaker:
        # a latch written back after Redis lost it is its own entry: same id, a later token
        found.setdefault(("breaker", f"{entry.incident_id}:{entry.fencing_token}"), entry.seen_s)
    return sorted(
        (Trip(at, src, ident) for (src, ident), at in found.items()), key=lambda t: t.at_s
    )


# --- timing of a window ------------------------------------------------------------------------


def _overlapping(history: History, start: float, end: float) -> list[Injected]:
    return [f for f in history.faults if f.start_s <= end and f.end_s >= start]


def _small_offsets(history: History, window: Window) -> list[float]:
    """Clock steps small enough to be believed at once, active during the window."""
    faults = _overlapping(history, window.start_s, window.end_s)
    offsets = [float(f.detail.get("offset_s", 0.0)) for f in faults if f.kind == "clock"]
    return [o for o in offsets if abs(o) <= STEP_BELIEVED_S]


def earliest_trip(history: History, window: Window) -> float:
    """The earliest moment a trip can be explained by this window: breach after its last
    tick, less a clock running ahead (believed steps only); or at once if Redis lost the
    paused instruments' keys meanwhile (docs/development.md: a missing key is BREACH, "no tick")."""
    ahead = max((o for o in _small_offsets(history, window) if o > 0), default=0.0)
    breach = window.start_s + history.timing.breach_s - ahead
    lost = [
        f.start_s
        for f in _overlapping(history, window.start_s, window.end_s)
        if f.kind in ("redis_restart", "flushall") and f.start_s >= window.start_s
    ]
    return min([breach, *lost]) - EARLY_S


def trip_deadline(history: History, window: Window) -> float:
    """The latest moment the window must be tripped by: breach + interval, pushed back by
    faults that delay acting (a leader down or cut off, Redis away, a clock behind)."""
    t = history.timing
    deadline = window.start_s + t.breach_s + t.interval_s + t.slack_s
    behind = max((-o for o in _small_offsets(history, window) if o < 0), default=0.0)
    deadline += behind
    for fault in sorted(history.faults, key=lambda f: f.start_s):
        if fault.start_s > deadline or fault.end_s < window.start_s - t.lease_ttl_s:
            continue
        deadline = max(deadline, _delayed_until(fault, t.lease_ttl_s, t.interval_s, t.slack_s))
    return deadline


def _delayed_until(fault: Injected, lease_s: float, interval_s: float, slack_s: float) -> float:
    if fault.kind in LEADER_FAULTS and fault.was_leader:
        # back within the lease: it acts itself; else a follower takes over
        return min(fault.end_s, fault.start_s + lease_s) + lease_s + interval_s + slack_s
    if fault.kind == "redis_restart":
        return fault.end_s + lease_s + interval_s + slack_s
    if fault.kind == "flushall":
        return fault.start_s + lease_s + interval_s + slack_s
    return 0.0


def window_of(history: History, at_s: float) -> Window | None:
    """The stale window a trip at `at_s` belongs to: one that was stale for `breach` (less
    the early allowance) and whose incident the operator had not yet reset."""
    for window in history.windows:
        earliest = earliest_trip(history, window)
        long_enough = window.end_s >= earliest
        if long_enough and earliest <= at_s <= window.reset_s + RESET_GRACE_S:
            return window
    return None


# --- the invariants ----------------------------------------------------------------------------


def no_missed_trip(history: History) -> Verdict:
    verdict = Verdict("no missed trip")
    all_trips = trips(history)
    for window in history.windows:
        deadline = trip_deadline(history, window)
        earliest = earliest_trip(history, window)
        tripped = any(earliest <= trip.at_s <= deadline for trip in all_trips)
        if not tripped and window.end_s < deadline:
            plain = window.start_s + history.timing.breach_s + history.timing.interval_s
            if window.end_s >= plain + history.timing.slack_s:
                verdict.explained["a fault delayed acting past the window's end"] += 1
            continue
        if not tripped and _still_latched(history, window):
            verdict.explained["still latched: the operator's reset before it failed"] += 1
            continue
        verdict.checked += 1
        if not tripped:
            later = [f"{t.at_s:.2f}s" for t in all_trips if t.at_s > deadline][:1]
            verdict.violations.append(
                f"stale window #{window.index} ({window.start_s:.2f}s for"
                f" {window.duration_s:.2f}s) not tripped by {deadline:.2f}s"
                f" (next trip: {later[0] if later else 'none'})"
            )
    return verdict


def _reset_lost(history: History, trip: Trip) -> bool:
    """A latch written back (incident "latch") because Redis lost the last operator's reset
    before every daemon had read it (they read resets every housekeeping pass, ~1 s; a daemon
    restarted after the reset reads it once it is up): docs/operations.md, "an engagement ...
    can only err toward staying engaged". Once lost, every later loss of Redis writes it back
    again, until the next reset."""
    if trip.source != "breaker" or not trip.ident.startswith(("latch:", "latch-")):
        return False
    done = [w for w in history.windows if w.reset_s <= trip.at_s]
    if not done:
        return False
    last = max(done, key=lambda w: w.reset_s)
    # The resets land in Redis between when they began and when they were done (the
    # breaker's first; two CLI runs take seconds on a loaded machine).
    reset = last.reset_from_s
    noticed_s = HOUSEKEEPING_S + history.timing.slack_s
    restarts = [
        f.end_s + STARTUP_S
        for f in history.faults
        if f.kind in ("sigkill", "garbage_file") and reset <= f.end_s <= trip.at_s
    ]
    # A daemon stopped or cut off from Redis when the reset came reads it once it is back.
    away = [
        f.end_s
        for f in history.faults
        if f.kind in ("sigstop", "blackhole") and f.start_s <= trip.at_s and reset <= f.end_s
    ]
    unread_until = max([last.reset_s, *restarts, *away]) + noticed_s
    # Redis is lost at some instant of the fault (a restart: while it is down), so a fault
    # under way when the reset came counts too.
    return any(
        f.end_s >= reset and f.start_s <= min(unread_until, trip.at_s)
        for f in history.faults
        if f.kind in ("redis_restart", "flushall")
    )


def _still_latched(history: History, window: Window) -> bool:
    earlier = {w.index for w in history.windows if w.start_s < window.start_s}
    return any(not r.ok for r in history.resets if r.window in earlier)


def resets_succeed(history: History) -> Verdict:
    """The operator can release after every incident (retried for longer than any Redis
    outage of the schedule)."""
    verdict = Verdict("the operator's reset succeeds")
    for reset in history.resets:
        verdict.checked += 1
        if not reset.ok:
            verdict.violations.append(
                f"reset {reset.group} after window #{reset.window} failed {reset.attempts}"
                f" times: {reset.error}"
            )
    return verdict


def no_spurious_trip(history: History) -> Verdict:
    verdict = Verdict("no spurious trip")
    for trip in trips(history):
        verdict.checked += 1
        if window_of(history, trip.at_s) is None and _reset_lost(history, trip):
            verdict.explained["Redis lost a reset before the daemons read it: latch kept"] += 1
        elif window_of(history, trip.at_s) is None and _written_back_near_a_loss(history, trip):
            verdict.explained["a latch written back near a Redis loss: counted below"] += 1
        elif window_of(history, trip.at_s) is None:
            verdict.violations.append(
                f"{trip.source} trip {trip.ident!r} at {trip.at_s:.2f}s:"
                " no stale window explains it"
            )
    return verdict


LOSS_BEFORE_RESET_S = 10.0  # a Redis loss this long before a reset may still shape it


def _written_back_near_a_loss(history: History, trip: Trip) -> bool:
    """A latch the daemon wrote back (incident `latch-<seq>`) after Redis lost data around
    the last reset: toward safety, but the reset should have voided it."""
    if trip.source != "breaker" or not trip.ident.startswith(("latch:", "latch-")):
        return False
    resets = [w.reset_s for w in history.windows if w.reset_s <= trip.at_s]
    since = (max(resets) if resets else 0.0) - LOSS_BEFORE_RESET_S
    return any(
        f.end_s >= since and f.start_s <= trip.at_s
        for f in history.faults
        if f.kind in ("redis_restart", "flushall")
    )


def reset_voids_written_back_latches(history: History) -> Verdict:
    """An operator's reset voids every latch before it, also one a daemon writes back after
    Redis lost data: no written-back latch re-engages after the reset unless Redis lost the
    reset itself before the daemons read it (no_spurious_trip explains those)."""
    verdict = Verdict("a reset voids the latches written back after a Redis loss")
    for trip in trips(history):
        verdict.checked += 1
        if window_of(history, trip.at_s) is not None or _reset_lost(history, trip):
            continue
        if not _written_back_near_a_loss(history, trip):
            continue
        verdict.violations.append(
            f"{trip.source} trip {trip.ident!r} at {trip.at_s:.2f}s: a latch written back"
            " after Redis lost data re-engaged after the operator's reset"
        )
    return verdict


def _split_brain(history: History, at_s: float) -> str | None:
    """Why a second key at `at_s` is documented, or None."""
    lease, slack = history.timing.lease_ttl_s, history.timing.slack_s
    for fault in history.faults:
        if not fault.start_s <= at_s <= fault.end_s + lease + slack:
            continue
        long_stop = fault.end_s - fault.start_s >= 0.9 * lease
        if fault.kind == "sigstop" and fault.was_leader and long_stop:
            return "split brain: leader SIGSTOPped past lease_ttl"
        if fault.kind == "blackhole" and fault.was_leader:
            return "split brain: leader cut off from Redis"
        if fault.kind == "blackhole":  # docs/operations.md "Split brain": any instance cut off acts
            return "split brain: follower cut off from Redis (act_without_lease)"
        if fault.kind == "redis_restart":
            return "split brain: Redis away (act_without_lease), restarted empty"
        if fault.kind == "flushall":
            return "Redis lost the latches and orders (FLUSHALL)"
        if spoiled(fault, "leader"):  # operations.md "Behind Sentinel": the lease lost
            return "split brain: the lease key overwritten (garbage), claimed by another"
    return None


def spoiled(fault: Injected, short: str) -> bool:
    """A `garbage` fault that wrote to `{ns}:{short}` (recorded with the namespace; the
    schedule names it without), unless it found Redis away."""
    if fault.kind != "garbage" or "skipped" in fault.detail:
        return False
    key = str(fault.detail.get("key", ""))
    return key == short or key.endswith(f":{short}")


def _unreadable_order(history: History, window: Window, request: VenueRequest) -> str | None:
    for fault in history.faults:
        aimed = spoiled(fault, f"order:{request.actuator}")
        if aimed and fault.start_s <= request.at_s:
            return "the old leader's order was unreadable (garbage): ordered again"
    return None


def one_key_per_incident(history: History) -> Verdict:
    verdict = Verdict("one Idempotency-Key per incident and actuator")
    first: dict[str, VenueRequest] = {}
    for request in history.venue:
        first.setdefault(request.key, request)
    groups: dict[tuple[int, str], list[VenueRequest]] = {}
    for request in first.values():
        window = window_of(history, request.at_s)
        if window is not None:  # outside any window it is a spurious trip: counted there
            groups.setdefault((window.index, request.actuator), []).append(request)
    for (index, actuator), requests in sorted(groups.items()):
        verdict.checked += 1
        window = history.windows[[w.index for w in history.windows].index(index)]
        for extra in sorted(requests, key=lambda r: r.at_s)[1:]:
            why = _split_brain(history, extra.at_s) or _unreadable_order(history, window, extra)
            if why is None:
                verdict.violations.append(
                    f"incident of window #{index}, actuator {actuator}: another key"
                    f" {extra.key!r} at {extra.at_s:.2f}s, no split brain explains it"
                )
            else:
                verdict.explained[why] += 1
    return verdict


def fencing_never_down(history: History) -> Verdict:
    """New keys in arrival order carry a token never below one the venue already saw (a
    retry of a key seen before carries that key's token: the venue deduplicates it)."""
    verdict = Verdict("fencing tokens never go down at the venue")
    highest: int | None = None
    seen: set[str] = set()
    for request in sorted(history.venue, key=lambda r: r.at_s):
        if request.key in seen:
            continue
        seen.add(request.key)
        verdict.checked += 1
        if request.fencing_token is None and _split_brain(history, request.at_s):
            verdict.explained["no lease to fence with: acting without it (act_without_lease)"] += 1
            continue
        try:
            token = int(request.fencing_token or "")
        except ValueError:
            verdict.violations.append(
                f"key {request.key!r}: fencing token {request.fencing_token!r}"
            )
            continue
        if highest is not None and token < highest and _counter_restarted(history, request, token):
            verdict.explained[COUNTER_RESTARTED] += 1
        elif highest is not None and token < highest and _split_brain(history, request.at_s):
            verdict.explained[DEPOSED] += 1
        elif highest is not None and token < highest:
            verdict.violations.append(
                f"key {request.key!r} at {request.at_s:.2f}s: token {token} after {highest}"
            )
        highest = token if highest is None else max(highest, token)
    return verdict


COUNTER_RESTARTED = "the counter went down before it (a violation of its own invariant)"
DEPOSED = "split brain: a deposed leader's late order (a venue keeping the highest refuses it)"


def _counter_restarted(history: History, request: VenueRequest, token: int) -> bool:
    """The venue saw a lower token because the counter itself went down before (the root
    cause, reported once by `counter_never_down`)."""
    pairs = zip(history.tokens, history.tokens[1:], strict=False)
    return any(
        after.token < before.token and after.token <= token and after.seen_s <= request.at_s
        for before, after in pairs
    )


def _killed_near(history: History, at_s: float) -> bool:
    return any(
        f.kind in ("sigkill", "garbage_file") and f.start_s - EXIT_SEEN_S <= at_s <= f.start_s + 1
        for f in history.faults
    )


def audit_once(history: History) -> Verdict:
    """Every event seen in `{ns}:events` is in PostgreSQL or an outbox, none twice; every
    incident the venue or the breaker saw has its audit events."""
    verdict = Verdict("every audit event in PostgreSQL or the outbox, none twice")
    stored = [row.id for row in history.postgres] + [row.id for row in history.outbox]
    for event_id, count in sorted(Counter(stored).items()):
        if count > 1:
            verdict.violations.append(f"audit event {event_id} stored {count} times")
    known = set(stored)
    for event_id in sorted(set(history.stream_ids)):
        verdict.checked += 1
        if event_id not in known:
            verdict.violations.append(f"audit event {event_id} (in the stream) not stored")
    incidents = {row.incident_id for row in [*history.postgres, *history.outbox]}
    acted = {r.key.rsplit(":", 2)[0]: r.at_s for r in reversed(history.venue)}
    acted.update({b.incident_id: b.seen_s for b in reversed(history.breaker)})
    for incident, at_s in sorted(acted.items()):
        verdict.checked += 1
        if incident in incidents:
            continue
        if _killed_near(history, at_s):
            verdict.explained["the acting instance was SIGKILLed before it recorded"] += 1
        else:
            verdict.violations.append(f"incident {incident} acted at {at_s:.2f}s: no audit event")
    return verdict


def no_unexpected_exit(history: History) -> Verdict:
    verdict = Verdict("no instance exits unless the schedule stopped it")
    for exit_ in history.exits:
        verdict.checked += 1
        if exit_.final:
            if exit_.code != 0:
                verdict.violations.append(f"{exit_.instance}: clean stop exited {exit_.code}")
            continue
        scheduled = any(
            f.instance == exit_.instance
            and f.kind in ("sigkill", "garbage_file")
            and f.start_s <= exit_.at_s <= f.start_s + EXIT_SEEN_S
            for f in history.faults
        )
        if not scheduled:
            verdict.violations.append(
                f"{exit_.instance} exited {exit_.code} at {exit_.at_s:.2f}s, not by the schedule"
            )
    return verdict


def no_bug_in_journal(history: History) -> Verdict:
    """A traceback (its exception line) or a `bug:` line in a daemon's log is a bug, by
    docs/operations.md's own words."""
    verdict = Verdict("no bug or traceback in the journal")
    verdict.checked = len(history.instances)
    counts = Counter(history.bug_lines)
    verdict.violations = [f"journal ({n}x): {line}" for line, n in counts.items()]
    return verdict


# Faults that may end a lease: its holder down, hung or cut off, Redis emptied, garbage.
LEASE_ENDERS = ("sigstop", "sigkill", "blackhole", "garbage_file", "redis_restart", "flushall")


def _lease_may_end(history: History, at_s: float) -> bool:
    t = history.timing
    after_s = 2 * t.lease_ttl_s + t.interval_s + t.slack_s
    for fault in history.faults:
        if not fault.start_s - EARLY_S <= at_s <= fault.end_s + after_s:
            continue
        infra = fault.kind in ("redis_restart", "flushall", "garbage")
        if infra or (fault.kind in LEASE_ENDERS and fault.was_leader):
            return True
    return False


MAX_INT = 2**63 - 1  # garbage `max_int`: what INCR can no longer increment


def issued_tokens(history: History) -> list[TokenSeen]:
    """The counter's samples that a claim wrote: 2**63-1 sampled after the nemesis planted
    it in `{ns}:leader:fencing` is its garbage, not a token. No claim can move past it (INCR
    overflows), so the documented recovery sets it aside and moves past the highest token
    known: counting it would make every correct recovery a counter "going down"."""
    planted = [
        f.start_s
        for f in history.faults
        if spoiled(f, "leader:fencing") and f.detail.get("value") == "max_int"
    ]
    return [
        seen
        for seen in history.tokens
        if not (seen.token == MAX_INT and any(at <= seen.seen_s + EARLY_S for at in planted))
    ]


def counter_never_down(history: History) -> Verdict:
    """docs/operations.md: "A token never goes backward, even when Redis lost the counter"."""
    verdict = Verdict("the fencing counter never goes down")
    tokens = issued_tokens(history)
    for before, after in pairwise(tokens):
        verdict.checked += 1
        if after.token < before.token:
            verdict.violations.append(
                f"fencing counter went down {before.token} -> {after.token} at {after.seen_s:.2f}s"
            )
    return verdict


def leadership_changes_explained(history: History) -> Verdict:
    """A new fencing token is a new lease: only a fault that can end the holder's lease
    explains one (two processes taking a lease from each other is a fault of the product)."""
    verdict = Verdict("a new lease only when a fault ended the last one")
    tokens = issued_tokens(history)
    for before, after in pairwise(tokens):
        if after.token < before.token:
            continue  # counter_never_down
        verdict.checked += 1
        if not _lease_may_end(history, after.seen_s):
            verdict.violations.append(
                f"lease {after.token} granted at {after.seen_s:.2f}s: no fault ended lease"
                f" {before.token}"
            )
    return verdict


INVARIANTS: tuple[Callable[[History], Verdict], ...] = (
    no_missed_trip,
    no_spurious_trip,
    one_key_per_incident,
    fencing_never_down,
    audit_once,
    no_unexpected_exit,
    no_bug_in_journal,
    leadership_changes_explained,
    counter_never_down,
    reset_voids_written_back_latches,
    resets_succeed,
)


def check(history: History) -> list[Verdict]:
    return [invariant(history) for invariant in INVARIANTS]


def summary(verdicts: Iterable[Verdict]) -> str:
    lines = []
    for v in verdicts:
        explained = "".join(f"; explained: {n} x {why}" for why, n in sorted(v.explained.items()))
        lines.append(
            f"  {'ok  ' if v.ok else 'FAIL'} {v.invariant}: {v.checked} checked,"
            f" {len(v.violations)} violations{explained}"
        )
        lines += [f"       - {text}" for text in v.violations[:15]]
    return "\n".join(lines)

"""The nemesis checker's invariants over hand-made histories: a clean one passes every
invariant, and for each invariant a history that breaks it makes it fail (and only where the
documented behaviour does not explain it). The schedule: drawn from the seed alone."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from testbed.nemesis.checker import (
    audit_once,
    check,
    counter_never_down,
    fencing_never_down,
    leadership_changes_explained,
    no_bug_in_journal,
    no_missed_trip,
    no_spurious_trip,
    no_unexpected_exit,
    one_key_per_incident,
    reset_voids_written_back_latches,
    resets_succeed,
    trip_deadline,
)
from testbed.nemesis.history import (
    AuditRow,
    BreakerTrip,
    Exit,
    History,
    Injected,
    Reset,
    TokenSeen,
    VenueRequest,
    Window,
)
from testbed.nemesis.schedule import ALL_FAULTS, Timing, make_schedule

TIMING = Timing(breach_s=1.5, interval_s=0.5, lease_ttl_s=2.0, slack_s=1.5)


def request(at_s: float, key: str, token: str | None = "3") -> VenueRequest:
    return VenueRequest(at_s, key, token, "{}", 200)


def clean() -> History:
    """One incident: the feed stale from 10 s to 20 s, tripped at breach + 0.2 s by leader
    "a" (token 3), recorded, reset at 23 s; both instances stopped cleanly at the end."""
    return History(
        seed=7,
        timing=TIMING,
        instances=("a", "b"),
        windows=[Window(0, 10.0, 20.0, 23.0, ("SPX",))],
        venue=[request(11.7, "inc1:kill:3"), request(11.9, "inc1:kill:3")],  # and a retry
        breaker=[BreakerTrip(11.65, "inc1", "a", "3")],
        stream_ids=["e1", "e2", "e3"],
        postgres=[
            AuditRow("e1", "decision", None, "inc1", "a", "breach"),
            AuditRow("e2", "action", "breaker", "inc1", "a", "ok"),
        ],
        outbox=[AuditRow("e3", "action", "kill", "inc1", "a", "ok")],
        exits=[Exit("a", 40.0, 0, final=True), Exit("b", 40.0, 0, final=True)],
        tokens=[TokenSeen(0.5, 3), TokenSeen(31.0, 4)],
        resets=[Reset(0, "breaker", True, 1), Reset(0, "kill", True, 2)],
        faults=[Injected(9, "sigkill", 30.0, 31.5, "a", was_leader=True)],
    )


def with_(history: History, **changes: object) -> History:
    return dataclasses.replace(history, **changes)  # type: ignore[arg-type]


def fault(kind: str, start: float, end: float, **kw: object) -> Injected:
    return Injected(0, kind, start, end, **kw)  # type: ignore[arg-type]


def test_a_clean_history_passes_every_invariant() -> None:
    verdicts = check(clean())
    assert [v.violations for v in verdicts] == [[]] * len(verdicts)
    assert all(v.checked > 0 for v in verdicts)


def test_a_window_never_tripped_is_a_missed_trip() -> None:
    verdict = no_missed_trip(with_(clean(), venue=[], breaker=[]))
    assert len(verdict.violations) == 1 and "not tripped by 13.50s" in verdict.violations[0]


def test_a_trip_later_than_breach_plus_interval_is_a_missed_trip() -> None:
    late = with_(clean(), venue=[request(14.0, "inc1:kill:3")], breaker=[])
    assert not no_missed_trip(late).ok


def test_a_leader_killed_in_the_window_gives_it_lease_ttl_more() -> None:
    killed = fault("sigkill", 10.5, 11.0, instance="a", was_leader=True)
    late = with_(clean(), venue=[request(14.0, "inc1:kill:3")], breaker=[], faults=[killed])
    assert trip_deadline(late, late.windows[0]) == 11.0 + 2.0 + 0.5 + 1.5
    assert no_missed_trip(late).ok
    follower = dataclasses.replace(killed, was_leader=False)  # a follower's death delays nothing
    assert not no_missed_trip(with_(late, faults=[follower])).ok


def test_a_window_a_fault_outlasted_is_explained_not_required() -> None:
    away = fault("redis_restart", 10.0, 19.0)
    verdict = no_missed_trip(with_(clean(), venue=[], breaker=[], faults=[away]))
    assert verdict.ok and sum(verdict.explained.values()) == 1


def test_a_trip_after_the_reset_or_without_stale_ticks_is_spurious() -> None:
    after_reset = with_(clean(), venue=[*clean().venue, request(30.0, "inc2:kill:3")])
    assert "no stale window explains it" in no_spurious_trip(after_reset).violations[0]
    too_early = with_(clean(), breaker=[BreakerTrip(10.5, "inc1", "a", "3")])
    assert not no_spurious_trip(too_early).ok
    short = with_(
        clean(),
        windows=[Window(0, 10.0, 10.5, 13.0)],
        venue=[request(11.7, "inc1:kill:3")],
        breaker=[],
    )
    assert not no_spurious_trip(short).ok  # fresh again before breach: nothing could breach


def test_a_small_clock_step_ahead_explains_an_earlier_trip_a_large_one_does_not() -> None:
    early = with_(clean(), venue=[request(10.9, "inc1:kill:3")], breaker=[])
    assert not no_spurious_trip(early).ok
    small = fault("clock", 5.0, 30.0, instance="a", detail={"offset_s": 0.8})
    assert no_spurious_trip(with_(early, faults=[small])).ok
    large = fault("clock", 5.0, 30.0, instance="a", detail={"offset_s": 3600.0})
    assert not no_spurious_trip(with_(early, faults=[large])).ok  # ignored by the steady clock


def test_a_second_key_for_one_incident_is_a_violation_unless_split_brain() -> None:
    second = with_(clean(), venue=[*clean().venue, request(12.5, "inc9:kill:4", "4")])
    verdict = one_key_per_incident(second)
    assert len(verdict.violations) == 1 and "inc9:kill:4" in verdict.violations[0]
    stopped = fault("sigstop", 9.0, 11.5, instance="a", was_leader=True)
    explained = one_key_per_incident(with_(second, faults=[stopped]))
    assert explained.ok
    assert explained.explained == {"split brain: leader SIGSTOPped past lease_ttl": 1}
    brief = dataclasses.replace(stopped, end_s=9.5)  # back within its lease: no split brain
    assert not one_key_per_incident(with_(second, faults=[brief])).ok
    # docs/operations.md "Split brain": a follower cut off from Redis acts without a lease, no token
    # (nemesis seed 20261206, all faults: a blackholed follower's kill 0.4 s after Redis).
    cut_off = fault("blackhole", 7.0, 12.1, instance="b", was_leader=False)
    tokenless = with_(clean(), venue=[*clean().venue, request(12.5, "inc9:kill", None)])
    assert one_key_per_incident(with_(tokenless, faults=[cut_off])).ok
    assert fencing_never_down(with_(tokenless, faults=[cut_off])).ok
    assert not one_key_per_incident(tokenless).ok


def test_garbage_over_the_lease_or_the_order_explains_a_second_key_where_it_landed() -> None:
    """Nemesis seed 20261206 in CI: garbage over `{ns}:leader` 0.9 s before a second key. A
    follower set it aside and claimed (token 2) while the leader, not yet told, acted on
    its own lease: docs/operations.md "Behind Sentinel", the lease lost to an outside writer."""
    second = with_(clean(), venue=[*clean().venue, request(12.5, "inc1:kill:4", "4")])
    over_lease = fault("garbage", 11.6, 11.6, detail={"key": "sup:leader", "value": "deep"})
    explained = one_key_per_incident(with_(second, faults=[over_lease]))
    assert explained.ok and sum(explained.explained.values()) == 1
    away = dataclasses.replace(over_lease, detail={**over_lease.detail, "skipped": "Redis away"})
    assert not one_key_per_incident(with_(second, faults=[away])).ok
    counter = fault("garbage", 11.6, 11.6, detail={"key": "sup:leader:fencing", "value": "deep"})
    assert not one_key_per_incident(with_(second, faults=[counter])).ok
    order = fault("garbage", 11.6, 11.6, detail={"key": "sup:order:kill", "value": "deep"})
    assert one_key_per_incident(with_(second, faults=[order])).ok
    other = fault("garbage", 11.6, 11.6, detail={"key": "sup:order:breaker", "value": "deep"})
    assert not one_key_per_incident(with_(second, faults=[other])).ok
    late = with_(clean(), venue=[*clean().venue, request(12.5, "inc1:kill:2", "2")])
    assert not fencing_never_down(late).ok  # a deposed leader's late order, no fault
    verdict = fencing_never_down(with_(late, faults=[over_lease]))
    assert verdict.ok and sum(verdict.explained.values()) == 1


def test_a_token_lower_than_one_the_venue_saw_or_none_is_a_violation() -> None:
    lower = with_(clean(), venue=[*clean().venue, request(12.5, "inc9:kill:2", "2")])
    assert "token 2 after 3" in fencing_never_down(lower).violations[0]
    missing = with_(clean(), venue=[request(11.7, "inc1:kill", None)])
    assert not fencing_never_down(missing).ok
    assert missing.venue[0].actuator == "kill"
    away = fault("redis_restart", 11.0, 11.5)  # no lease can be held: act_without_lease
    assert fencing_never_down(with_(missing, faults=[away])).ok
    restarted = with_(lower, tokens=[TokenSeen(0.5, 3), TokenSeen(12.0, 1), TokenSeen(12.2, 2)])
    verdict = fencing_never_down(restarted)  # the root cause is counter_never_down's
    assert verdict.ok and sum(verdict.explained.values()) == 1
    assert not counter_never_down(restarted).ok
    retry = with_(clean(), venue=[*clean().venue, request(12.5, "inc0:kill:1", "1")])
    retry.venue.insert(0, request(11.0, "inc0:kill:1", "1"))
    assert fencing_never_down(retry).ok  # a retry of a key seen before keeps its token


def test_an_audit_event_lost_or_stored_twice_is_a_violation() -> None:
    lost = with_(clean(), stream_ids=[*clean().stream_ids, "e4"])
    assert "e4" in audit_once(lost).violations[0]
    twice = with_(clean(), outbox=[*clean().outbox, AuditRow("e1", "decision")])
    assert "stored 2 times" in audit_once(twice).violations[0]
    unrecorded = with_(clean(), postgres=[], outbox=[], stream_ids=[])
    assert len(audit_once(unrecorded).violations) == 1  # inc1 acted, nothing recorded


def test_an_exit_the_schedule_did_not_cause_is_a_violation() -> None:
    died = with_(clean(), exits=[Exit("b", 15.0, 1), *clean().exits])
    assert "b exited 1 at 15.00s" in no_unexpected_exit(died).violations[0]
    killed = fault("sigkill", 14.9, 16.0, instance="b")
    assert no_unexpected_exit(with_(died, faults=[killed])).ok
    other = fault("sigkill", 14.9, 16.0, instance="a")
    assert not no_unexpected_exit(with_(died, faults=[other])).ok
    unclean = with_(clean(), exits=[Exit("a", 40.0, 1, final=True)])
    assert not no_unexpected_exit(unclean).ok


def test_a_bug_in_the_journal_is_a_violation() -> None:
    buggy = with_(clean(), bug_lines=["a: ERROR bug: background task failed"])
    assert not no_bug_in_journal(buggy).ok


def test_a_history_saved_and_loaded_is_the_same(tmp_path: Path) -> None:
    history = with_(clean(), faults=[fault("clock", 1.0, 2.0, instance="a", detail={"o": 1})])
    history.save(tmp_path / "h.json")
    assert History.load(tmp_path / "h.json") == history


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 2**32), minutes=st.floats(1.0, 30.0))
def test_a_schedule_is_drawn_from_its_seed_alone(seed: int, minutes: float) -> None:
    schedule = make_schedule(seed, minutes * 60)
    assert schedule == make_schedule(seed, minutes * 60)
    windows = schedule.windows
    assert all(w.start_s < w.end_s < w.reset_s < schedule.duration_s for w in windows)
    assert all(a.reset_s < b.start_s for a, b in itertools.pairwise(windows))
    assert all(0 < f.at_s <= f.end_s < schedule.duration_s for f in schedule.faults)
    fewer = make_schedule(seed, minutes * 60, faults=("sigkill", "flushall"))
    assert fewer.windows == windows  # a subset of faults keeps the incidents where they were
    assert {f.kind for f in fewer.faults} <= {"sigkill", "flushall"}
    assert {f.kind for f in schedule.faults} <= set(ALL_FAULTS)


def test_a_latch_written_back_after_redis_lost_a_reset_is_explained_nothing_else() -> None:
    rewritten = with_(clean(), breaker=[*clean().breaker, BreakerTrip(24.5, "latch", "a", "4")])
    assert not no_spurious_trip(rewritten).ok  # after the reset at 23 s
    lost = fault("redis_restart", 23.2, 23.8)
    verdict = no_spurious_trip(with_(rewritten, faults=[lost]))
    assert verdict.ok and sum(verdict.explained.values()) == 1
    later = fault("redis_restart", 27.0, 27.5)  # the daemons had read the reset by then
    assert not no_spurious_trip(with_(rewritten, faults=[later])).ok
    restarted = fault("sigkill", 25.0, 26.0, instance="b")  # but b, restarted, had not
    again = with_(
        rewritten, faults=[restarted, later], breaker=[BreakerTrip(27.9, "latch", "b", "5")]
    )
    assert no_spurious_trip(again).ok
    twice = with_(rewritten, faults=[lost, later])  # lost once, written back at every loss
    twice.breaker.append(BreakerTrip(27.8, "latch", "a", "5"))
    assert no_spurious_trip(twice).ok


def test_a_reset_lost_while_the_second_reset_ran_is_a_lost_reset() -> None:
    """Nemesis seed 30: the breaker's reset landed at once, Redis was flushed 1.4 s later,
    and the window's reset was done (the kill's too) 0.5 s after the flush: the breaker's
    reset was lost before any daemon read it, as the time the resets began shows."""
    window = dataclasses.replace(clean().windows[0], reset_s=23.0, reset_begun_s=21.0)
    rewritten = with_(
        clean(),
        windows=[window],
        breaker=[*clean().breaker, BreakerTrip(28.0, "latch-9", "b", "5")],
    )
    flushed = fault("flushall", 22.4, 22.4)
    lost = with_(rewritten, faults=[flushed])
    assert no_spurious_trip(lost).ok and reset_voids_written_back_latches(lost).ok
    unknown = dataclasses.replace(window, reset_begun_s=None)  # an older history: when done
    assert not reset_voids_written_back_latches(with_(lost, windows=[unknown])).ok
    before = fault("flushall", 20.5, 20.5)  # before the resets began: nothing to lose
    assert not reset_voids_written_back_latches(with_(rewritten, faults=[before])).ok


def test_a_latch_numbered_by_its_seq_lost_while_redis_restarted_or_a_daemon_stopped() -> None:
    """The daemon names a written-back latch's incident `latch-<seq>`; Redis may lose a
    reset made while its restart was under way; a daemon stopped when the reset came reads
    it only once it runs again."""
    rewritten = with_(clean(), breaker=[*clean().breaker, BreakerTrip(26.5, "latch-2", "a", "4")])
    assert not no_spurious_trip(rewritten).ok
    under_way = fault("redis_restart", 22.9, 23.6)  # began just before the reset at 23 s
    assert no_spurious_trip(with_(rewritten, faults=[under_way])).ok
    later = fault("flushall", 26.0, 26.1)  # 3 s after the reset: every daemon had read it
    assert not reset_voids_written_back_latches(with_(rewritten, faults=[later])).ok
    stopped = fault("sigstop", 22.0, 25.5, instance="a")  # but a was stopped until 25.5 s
    assert no_spurious_trip(with_(rewritten, faults=[stopped, later])).ok


def test_a_written_back_latch_after_the_reset_is_its_own_violation() -> None:
    """Redis emptied shortly before the reset, which the daemons did read: the latch they
    wrote back must not re-engage; counted under its own invariant, not as spurious."""
    rewritten = with_(clean(), breaker=[*clean().breaker, BreakerTrip(27.5, "latch-3", "a", "4")])
    loss = fault("redis_restart", 21.0, 21.5)  # before the reset at 23 s
    history = with_(rewritten, faults=[loss])
    assert no_spurious_trip(history).ok
    verdict = reset_voids_written_back_latches(history)
    assert len(verdict.violations) == 1 and "latch-3" in verdict.violations[0]
    assert reset_voids_written_back_latches(rewritten).ok  # no loss: a spurious trip instead
    assert not no_spurious_trip(rewritten).ok


def test_a_new_lease_without_a_fault_or_a_counter_going_down_is_a_violation() -> None:
    assert leadership_changes_explained(clean()).ok  # the leader was killed at 30 s
    flapping = with_(clean(), tokens=[TokenSeen(0.5, 3), TokenSeen(15.0, 4), TokenSeen(15.6, 5)])
    verdict = leadership_changes_explained(flapping)
    assert len(verdict.violations) == 2 and "no fault ended lease 3" in verdict.violations[0]
    backward = with_(clean(), tokens=[TokenSeen(0.5, 3), TokenSeen(31.0, 2)])
    assert "went down 3 -> 2" in counter_never_down(backward).violations[0]
    assert counter_never_down(flapping).ok
    follower = Injected(9, "sigkill", 30.0, 31.5, "b", was_leader=False)
    assert not leadership_changes_explained(with_(clean(), faults=[follower])).ok


def test_the_maximum_integer_planted_in_the_counter_is_not_a_token_going_down() -> None:
    """Nemesis seed 7, `--faults garbage`: the counter read 2**63-1 (the nemesis's garbage,
    at 104.55 s), then 4 once a claim set it aside. No claim can go past 2**63-1; only what
    the nemesis did not plant counts."""
    planted = Injected(
        9, "garbage", 25.0, 25.0, detail={"key": "sup:leader:fencing", "value": "max_int"}
    )
    sampled = [TokenSeen(0.5, 3), TokenSeen(25.1, 2**63 - 1), TokenSeen(26.0, 4)]
    recovered = with_(clean(), faults=[planted], tokens=sampled)
    assert counter_never_down(recovered).ok
    assert leadership_changes_explained(recovered).ok
    assert not counter_never_down(with_(recovered, faults=[])).ok  # nobody planted it
    below = with_(recovered, tokens=[*sampled[:2], TokenSeen(26.0, 2)])
    assert "went down 3 -> 2" in counter_never_down(below).violations[0]  # still below 3


def test_a_key_lost_while_stale_may_trip_before_breach() -> None:
    early = with_(clean(), venue=[request(10.9, "inc1:kill:3")], breaker=[])
    assert not no_spurious_trip(early).ok
    flushed = fault("flushall", 10.3, 10.3)  # the paused instrument's key is gone: no tick
    assert no_spurious_trip(with_(early, faults=[flushed])).ok
    before = fault("flushall", 9.0, 9.0)  # the feed wrote it again before the window
    assert not no_spurious_trip(with_(early, faults=[before])).ok


def test_a_reset_that_kept_failing_is_a_violation_and_the_next_window_stays_latched() -> None:
    failed = Reset(0, "breaker", False, 5, "refused: Redis: ResponseError: value is not an integer")
    history = with_(clean(), resets=[failed])
    assert "value is not an integer" in resets_succeed(history).violations[0]
    second = Window(1, 30.0, 40.0, 43.0)  # never tripped: the breaker was never released
    verdict = no_missed_trip(with_(history, windows=[*history.windows, second]))
    assert verdict.ok and sum(verdict.explained.values()) == 1
    assert not no_missed_trip(with_(clean(), windows=[*clean().windows, second])).ok

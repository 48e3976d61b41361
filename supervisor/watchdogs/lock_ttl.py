"""lock_ttl: are the coordination locks of the trading stack alive, owned and expiring?

For every key, PTTL and the owner value (GET) are read in one pipeline; one verdict per key,
its value the remaining TTL in seconds (-1: no expiry; none when the key is absent), which
feeds `supervisor_lock_ttl_seconds{key}`.

| what is seen | verdict |
|---|---|
| PTTL -1 (no expiry) | BREACH: an orphan that never expires (always, whatever else is set) |
| PTTL above `max_ttl` | BREACH: a misconfigured owner |
| the same owner value for longer than `max_hold` | BREACH: a stuck owner renewing forever |
| the TTL not counting down for longer than `min_ttl_progress` | BREACH: see below |
| key absent, listed in `require_owner` | BREACH: nobody owns it (e.g. the tick stream) |
| key absent otherwise | OK "not held" |
| owner not a string, odd reply | UNKNOWN with the reason; Redis down: UNKNOWN for every key |

Memory. The watchdog keeps, per key, the owner value it saw first and when, and its last
observation. It is reset when the owner value changes or the key disappears, so `max_hold`
counts "the same owner, continuously, as far as this supervisor has seen" (a restart of
the supervisor starts the count again: it errs toward not tripping). A Redis outage keeps
the memory: the owner we see afterwards is compared with the one from before.

TTL progress (the runbook's "confirm lock TTL expiry is progressing"). Each observation
gives the lock's expiry instant, `now + PTTL`. Between two observations of the same owner,
either that instant stayed put (within `EXPIRY_JITTER_S`: the TTL counted down, no renewal)
or it moved later (the owner renewed). A healthy owner renewing every few checks shows
countdowns between its renewals. An owner whose lock is pushed forward between *every* pair
of checks for longer than `min_ttl_progress` is renewing faster than we look — a renewal
loop spinning on its own, typically a zombie whose work loop died while its keep-alive
thread did not. That is a BREACH. Observations closer together than `EXPIRY_JITTER_S` carry
no information and are skipped. The rule is off unless `min_ttl_progress` is set; set it
longer than the owner's renewal period and the watchdog's `interval`. A lock re-acquired
with a fresh owner value each time resets the memory and is not caught by it (that is a
new owner, not a stuck one; `max_ttl` still applies).

Remediation (`release_orphans = true`, off by default). The watchdog never changes what it
watches: for a key with no expiry it proposes a remedy, which the daemon applies (never in
`check` or dry_run) with a compare-and-delete that only deletes while the owner value is
still the one observed and the key still has no expiry (supervisor/remedies.py), and
audits. The next check sees the key gone (OK, or BREACH if an owner is required and none
took over).

Owner values may be tokens: they are shown shortened, never whole.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

from pydantic import Field, model_validator
from redis.asyncio import Redis

from supervisor.config.types import PositiveDuration, Text
from supervisor.config.watchdog_base import AlertLevels, WatchdogBase
from supervisor.constants import DEADLINE_EPSILON_S
from supervisor.declarations import Need
from supervisor.errors import first_line
from supervisor.gauges import KindGauge
from supervisor.model import Remedy, Status, Verdict
from supervisor.quantities import format_duration
from supervisor.remedies import OWNER_SHOWN_CHARS, RELEASE_ORPHAN, show_owner
from supervisor.sources.redis import Command, batch
from supervisor.watchdogs.base import Watchdog, WatchdogKind

log = logging.getLogger(__name__)

# How far the expiry instant (now + PTTL) may wander between two checks without a renewal:
# scheduling delay between `now` and the read, and round-trip jitter. PTTL itself is in ms.
EXPIRY_JITTER_S = 0.25


@dataclass(frozen=True)
class Observation:
    """One key as read: remaining TTL in ms (-1: no expiry) and the owner value."""

    pttl_ms: int
    owner: bytes

    @property
    def ttl_s(self) -> float:
        return -1.0 if self.pttl_ms < 0 else self.pttl_ms / 1000

    def expires_at(self, now: float) -> float | None:
        return None if self.pttl_ms < 0 else now + self.pttl_ms / 1000


@dataclass
class Held:
    """What we remember of one key between checks, for one owner value."""

    owner: bytes
    first_seen: float
    last_at: float
    last_expires_at: float | None
    renewing_since: float | None = None  # start of an unbroken run of renewals


def observe(pttl_reply: object, owner_reply: object) -> Observation | None:
    """The key as read, None when it is absent; ValueError when the replies make no sense."""
    if isinstance(pttl_reply, Exception):
        raise ValueError(f"redis error: {first_line(pttl_reply)}")
    if isinstance(pttl_reply, bool) or not isinstance(pttl_reply, int) or pttl_reply < -2:
        raise ValueError(f"unexpected PTTL reply {shorten(repr(pttl_reply))}")
    if isinstance(owner_reply, Exception):
        raise ValueError(f"owner unreadable: {first_line(owner_reply)}")
    if pttl_reply == -2 or owner_reply is None:
        return None  # absent (or expired between the two reads: absent by now)
    if isinstance(owner_reply, str):
        owner_reply = owner_reply.encode("utf-8", "surrogatepass")
    if not isinstance(owner_reply, bytes | bytearray):
        raise ValueError(f"unexpected owner reply: a {type(owner_reply).__name__}")
    return Observation(pttl_reply, bytes(owner_reply))


def shorten(text: str) -> str:
    return text if len(text) <= OWNER_SHOWN_CHARS else text[:OWNER_SHOWN_CHARS] + "…"


class LockTtlConfig(WatchdogBase):
    """What each limit means: see the module docstring above."""

    kind: Literal["lock_ttl"]
    keys: list[Text] = Field(min_length=1, json_schema_extra={"uniqueItems": True})
    max_ttl_s: PositiveDuration | None = Field(None, alias="max_ttl")
    max_hold_s: PositiveDuration | None = Field(None, alias="max_hold")
    # The TTL must be seen counting down (no renewal between two checks) at least this often.
    min_ttl_progress_s: PositiveDuration | None = Field(None, alias="min_ttl_progress")
    require_owner: list[Text] = []
    release_orphans: bool = False  # compare-and-delete a lock with no expiry (audited)

    def alert_levels(self, subject: str) -> AlertLevels:
        return AlertLevels(breach=self.max_ttl_s)  # the value is the TTL: above it, BREACH

    @model_validator(mode="after")
    def _known_keys(self) -> LockTtlConfig:
        if len(set(self.keys)) != len(self.keys):
            raise ValueError("'keys' lists a key twice")
        unknown = [key for key in self.require_owner if key not in self.keys]
        if unknown:
            raise ValueError(f"'require_owner' names keys not in 'keys': {', '.join(unknown)}")
        return self

    @model_validator(mode="after")
    def _progress_window_spans_checks(self) -> LockTtlConfig:
        # Two checks are `interval` apart: with a shorter window, one ordinary renewal
        # between two checks already reads as "renewed between every check" and breaches.
        window = self.min_ttl_progress_s
        if window is not None and window <= self.interval_s:
            raise ValueError(
                "'min_ttl_progress' must be longer than 'interval': one renewal between two"
                " checks would already breach"
            )
        return self


class LockTtl(Watchdog):
    config: LockTtlConfig

    def __init__(self, config: LockTtlConfig, redis: Redis) -> None:
        super().__init__(config)
        self.redis = redis
        self._held: dict[str, Held] = {}
        self._orphans: dict[str, bytes] = {}  # key -> owner, from the last check

    @property
    def subjects(self) -> list[str]:
        return list(self.config.keys)

    async def check(self, now: float, session_opened_at: float | None) -> list[Verdict]:
        commands: list[Command] = []
        for key in self.subjects:
            commands += [("PTTL", key), ("GET", key)]
        replies = await batch(self.redis, commands)
        verdicts = []
        self._orphans = {}
        for index, key in enumerate(self.subjects):
            pttl_reply, owner_reply = replies[2 * index], replies[2 * index + 1]
            verdicts.append(self.judge(key, pttl_reply, owner_reply, now))
            if pttl_reply == -1 and isinstance(owner_reply, bytes):
                self._orphans[key] = owner_reply
        return verdicts

    def remedies(self) -> list[Remedy]:
        """With `release_orphans`: release each lock seen without an expiry."""
        if not self.config.release_orphans:
            return []
        return [
            Remedy(self.name, RELEASE_ORPHAN, key, owner) for key, owner in self._orphans.items()
        ]

    def judge(self, key: str, pttl_reply: object, owner_reply: object, now: float) -> Verdict:
        """One key's verdict from its PTTL and GET replies; updates the key's memory."""
        try:
            seen = observe(pttl_reply, owner_reply)
        except ValueError as exc:
            return Verdict(self.name, key, Status.UNKNOWN, f"{key}: {exc}")
        if seen is None:
            self._held.pop(key, None)
            return self._absent(key)
        return self._judge_held(key, seen, self._remember(key, seen, now), now)

    def _absent(self, key: str) -> Verdict:
        if key in self.config.require_owner:
            reason = f"{key}: missing: nobody holds this lock, and an owner is required"
            return Verdict(self.name, key, Status.BREACH, reason)
        return Verdict(self.name, key, Status.OK, f"{key}: not held")

    def _remember(self, key: str, seen: Observation, now: float) -> Held:
        held = self._held.get(key)
        expires_at = seen.expires_at(now)
        if held is None or held.owner != seen.owner:
            held = Held(seen.owner, first_seen=now, last_at=now, last_expires_at=expires_at)
            self._held[key] = held
        elif now - held.last_at > EXPIRY_JITTER_S:  # closer observations tell nothing
            held.renewing_since = self._renewing_since(held, expires_at)
            held.last_at, held.last_expires_at = now, expires_at
        return held

    @staticmethod
    def _renewing_since(held: Held, expires_at: float | None) -> float | None:
        if expires_at is None or held.last_expires_at is None:
            return None  # no expiry: judged as an orphan, not as a renewal
        if expires_at > held.last_expires_at + EXPIRY_JITTER_S:  # pushed later: renewed
            return held.renewing_since if held.renewing_since is not None else held.last_at
        return None  # counted down: expiry is progressing

    def _judge_held(self, key: str, seen: Observation, held: Held, now: float) -> Verdict:
        problems = self._problems(seen, held, now)
        owner = show_owner(seen.owner)
        if problems:
            reason = f"{key}: " + "; ".join(text for text, _ in problems) + f" (owner {owner})"
            threshold = problems[0][1] if problems[0][1] is not None else self.config.max_ttl_s
            return Verdict(
                self.name, key, Status.BREACH, reason, seen.ttl_s, "s", threshold=threshold
            )
        hold_s = max(0.0, now - held.first_seen)
        reason = (
            f"{key}: held by {owner} for {format_duration(hold_s)},"
            f" TTL {format_duration(seen.ttl_s)}"
        )
        return Verdict(
            self.name,
            key,
            Status.OK,
            reason,
            seen.ttl_s,
            "s",
            threshold=self.config.max_ttl_s,
            deadline=self._deadline(held),
        )

    def _problems(
        self, seen: Observation, held: Held, now: float
    ) -> list[tuple[str, float | None]]:
        """(reason, threshold crossed) for every rule the lock breaks, worst first."""
        cfg = self.config
        problems: list[tuple[str, float | None]] = []
        if seen.pttl_ms == -1:
            problems.append(("no expiry (PTTL -1): an orphan that never expires", None))
        elif cfg.max_ttl_s is not None and seen.ttl_s > cfg.max_ttl_s:
            text = f"TTL {format_duration(seen.ttl_s)} > max_ttl {format_duration(cfg.max_ttl_s)}"
            problems.append((text, cfg.max_ttl_s))
        hold_s = now - held.first_seen
        if cfg.max_hold_s is not None and hold_s > cfg.max_hold_s:
            text = (
                f"held by the same owner for {format_duration(hold_s)}"
                f" > max_hold {format_duration(cfg.max_hold_s)}: a stuck owner"
            )
            problems.append((text, cfg.max_hold_s))
        window = cfg.min_ttl_progress_s
        stalled_s = None if held.renewing_since is None else now - held.renewing_since
        if window is not None and stalled_s is not None and stalled_s > window:
            text = (
                f"TTL not counting down for {format_duration(stalled_s)}"
                f" > min_ttl_progress {format_duration(window)}: renewed between every check"
            )
            problems.append((text, window))
        return problems

    def _deadline(self, held: Held) -> float | None:
        """When a rule that counts time (max_hold, min_ttl_progress) would next be broken."""
        cfg = self.config
        candidates = []
        if cfg.max_hold_s is not None:
            candidates.append(held.first_seen + cfg.max_hold_s)
        if cfg.min_ttl_progress_s is not None and held.renewing_since is not None:
            candidates.append(held.renewing_since + cfg.min_ttl_progress_s)
        return min(candidates) + DEADLINE_EPSILON_S if candidates else None


KIND = WatchdogKind(
    config=LockTtlConfig,
    build=lambda config, clients: LockTtl(config, clients.redis),
    needs=frozenset({Need.REDIS}),
    gauge=KindGauge(
        "supervisor_lock_ttl_seconds",
        "Remaining TTL of each watched lock (-1: no expiry).",
        "key",
        watchdog_label=False,
    ),
)

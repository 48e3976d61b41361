"""What this instance believes about the lease, and what it may do. No I/O.

Only the leader runs automatic actions. Its lease is believed by its own monotonic clock: it
stops acting at (when the request that won or renewed the lease was sent) + lease_ttl minus
a safety margin, whether or not it has heard from Redis since, because Redis may have let the
lease expire and given it to another instance meanwhile (a paused VM, a SIGSTOP, a partition).
The margin covers the two clocks running at slightly different rates, and a Redis failover
that carries the key over with its time to live.

When Redis cannot be reached at all, nobody can hold a lease: with `act_without_lease` every
instance then runs the actions that do not need Redis (they only move toward safety and are
idempotent, so two of them are harmless; a kill switch nobody may press is not).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

LEASE_MARGIN_FRACTION = 0.1  # stop acting this share of lease_ttl before Redis may expire it


class Role(StrEnum):
    STANDALONE = "standalone"  # [ha] is off: this instance acts alone
    STARTING = "starting"  # HA on, the lease not asked for yet: acts on nothing
    LEADER = "leader"  # holds the lease (until its deadline, by the monotonic clock)
    FOLLOWER = "follower"  # another instance holds the lease
    NO_LEASE = "no_lease"  # Redis cannot be reached: nobody can hold a lease
    DUPLICATE = "duplicate"  # another process runs with this instance id: acts on nothing
    WAITING = "waiting"  # Redis lost the fencing counter: leaves it to an older instance


@dataclass
class Leadership:
    instance: str
    enabled: bool
    lease_ttl_s: float = 5.0
    act_without_lease: bool = True
    role: Role = Role.STARTING
    token: int | None = None  # the fencing token of this instance's lease, while it leads
    leader: str | None = None  # who holds the lease, as last read ("" while nobody does)
    leader_token: int | None = None  # the holder's token, as last read
    acquired_at: float | None = None  # monotonic: when this instance's lease began
    deadline: float = 0.0  # monotonic: this instance acts as leader until then
    holder_until: float = 0.0  # monotonic: the holder's lease may run until then, as last read

    def __post_init__(self) -> None:
        if not self.enabled:
            self.role, self.leader = Role.STANDALONE, self.instance

    @property
    def margin_s(self) -> float:
        return self.lease_ttl_s * LEASE_MARGIN_FRACTION

    def leads(self, now: float) -> bool:
        """Holds a lease that cannot have expired yet (or HA is off)."""
        if self.role is Role.STANDALONE:
            return True
        return self.role is Role.LEADER and now < self.deadline

    def may_act(self, now: float) -> bool:
        """May run automatic actions that move toward safety."""
        if self.leads(now):
            return True
        return self.role is Role.NO_LEASE and self.act_without_lease

    def won(self, token: int, sent_at: float) -> bool:
        """The lease was acquired or renewed by a request sent at `sent_at` (monotonic);
        True if the instance acts as leader from now on and did not just before: a new term
        (a new token), or its own lease renewed after it had lapsed by this clock."""
        begins = not self.leads(sent_at) or token != self.token
        if self.role is not Role.LEADER or token != self.token:
            self.acquired_at = sent_at
        self.role, self.token = Role.LEADER, token
        self.leader, self.leader_token = self.instance, token
        self.deadline = sent_at + self.lease_ttl_s - self.margin_s
        return begins

    def lost(self, holder: str, holder_token: int | None, holder_until: float = 0.0) -> bool:
        """Another instance holds the lease (or nobody: ""), until `holder_until` at most
        (monotonic); True if this one led until now."""
        was_leader = self.role is Role.LEADER
        self.role, self.token, self.acquired_at = Role.FOLLOWER, None, None
        self.leader, self.leader_token = holder, holder_token
        self.holder_until = holder_until
        return was_leader

    def duplicate(self) -> bool:
        """Another process holds this instance id: this one leads no more and acts on
        nothing until the ids differ. True if this one led until now."""
        was_leader = self.role is Role.LEADER
        self.role, self.token, self.acquired_at = Role.DUPLICATE, None, None
        self.leader, self.leader_token = None, None
        return was_leader

    def unreachable(self, now: float) -> bool:
        """Redis did not answer. A leader keeps acting until its deadline, and a follower
        keeps following until its holder's lease would run out (the holder may still act:
        one unanswered claim, a pause of this process, is no reason to act beside it);
        after that nobody can hold a lease. A duplicate acts on nothing, Redis or not.
        True if this ends this instance's lead."""
        if self.role is Role.LEADER and now < self.deadline:
            return False
        if self.role is Role.FOLLOWER and now < self.holder_until:
            return False
        if self.role is Role.DUPLICATE:
            return False
        was_leader = self.role is Role.LEADER
        self.role, self.token, self.acquired_at = Role.NO_LEASE, None, None
        self.leader, self.leader_token = None, None
        return was_leader

    def lease_age_s(self, now: float) -> float | None:
        """How long this instance has led (by its own clock); None unless it leads."""
        if self.acquired_at is None or not self.leads(now):
            return None
        return now - self.acquired_at

    def role_name(self, now: float) -> str:
        """The role as published: a leader whose lease may have expired says "lapsed"."""
        if self.role is Role.LEADER and now >= self.deadline:
            return "lapsed"
        return self.role.value

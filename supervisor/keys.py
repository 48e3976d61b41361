"""Every Redis key the supervisor owns, built here and nowhere else: `{ns}:...`, where `ns` is
`[supervisor] namespace`. Operators, their engines and ACLs read these names (the
configuration reference lists them under `namespace`): keep each one byte for byte.

Each builder's comment says what the key holds, its Redis type and who writes it.
tests/unit/test_keys.py fails on a namespaced key built outside this module, and on a key
the docs name that no builder makes. A leaf: it imports nothing from `supervisor`.
"""

from __future__ import annotations

# Published state (supervisor/publish/redis_state.py); with [ha] on, the leader writes it.


def state_key(namespace: str) -> str:
    # hash: trading_state, health, breaker, ... of the whole stack; the daemon, every second
    return f"{namespace}:state"


def watchdog_key(namespace: str, name: str) -> str:
    # hash: one watchdog's last run (status, value, reason, ...); the daemon, after each run
    return f"{namespace}:watchdog:{name}"


def heartbeat_key(namespace: str) -> str:
    # string with a TTL of 3 housekeeping cycles: time of the last cycle; every live daemon
    return f"{namespace}:heartbeat"


def events_key(namespace: str) -> str:
    # stream, capped: the audit events; AuditTrail, of the daemon and of the manual commands
    return f"{namespace}:events"


# Latches and resets (supervisor/latch.py, supervisor/manual.py).


def engaged_key(namespace: str) -> str:
    # hash: actuator -> its latch as JSON; the daemon and `trip`/`kill`, `reset` deletes
    return f"{namespace}:engaged"


def reset_key(namespace: str) -> str:
    # hash: actuator -> the number of its last reset; `reset`, before it releases anything
    return f"{namespace}:reset"


def seq_key(namespace: str) -> str:
    # string, an INCR counter: numbers latches and resets; the daemon and the manual commands
    return f"{namespace}:seq"


def reset_lock_key(namespace: str) -> str:
    # string with a TTL (SET NX EX): the operator of the last reset; `reset`
    return f"{namespace}:reset_lock"


# The leader lease, with [ha] on (supervisor/ha/lease.py: its CLAIM and RELEASE scripts).


def leader_key(namespace: str) -> str:
    # string with the lease's TTL: the leader's instance id; the claim script
    return f"{namespace}:leader"


def token_key(namespace: str) -> str:
    # string with the lease's TTL: the leader's fencing token; the claim script
    return f"{namespace}:leader:token"


def fencing_key(namespace: str) -> str:
    # string, an INCR counter that never expires: the last token granted; the claim script
    return f"{namespace}:leader:fencing"


def boot_key(namespace: str) -> str:
    # string with the lease's TTL: the leader's boot nonce; the claim script
    return f"{namespace}:leader:boot"


def identity_key(namespace: str, instance: str) -> str:
    # string with the lease's TTL: the boot nonce of the process holding this instance id;
    # the claim script
    return f"{namespace}:identity:{instance}"


def lease_keys(namespace: str) -> list[str]:
    """The lease's keys (strings), the instance's identity aside."""
    return [
        leader_key(namespace),
        token_key(namespace),
        fencing_key(namespace),
        boot_key(namespace),
    ]


# The other shared records, with [ha] on (supervisor/ha/orders.py, supervisor/ha/instances.py).


def order_key(namespace: str, actuator: str) -> str:
    # string with a TTL of 3 lease_ttls: the leader's order not known done, as JSON; the leader
    return f"{namespace}:order:{actuator}"


def instance_key(namespace: str, instance: str) -> str:
    # hash with a TTL of 3 housekeeping cycles: what one instance believes; that instance
    return f"{namespace}:instance:{instance}"


def instances_key(namespace: str) -> str:
    # set: every instance id ever seen; each live instance adds its own
    return f"{namespace}:instances"


# Unreadable entries set aside (supervisor/stored_redis.py).


def aside_key(namespace: str, key: str) -> str:
    # the type of what was moved, with a TTL (stored.SET_ASIDE_TTL_S): an unreadable value of
    # `key`, or its unreadable hash fields; whoever read it
    rest = key.removeprefix(f"{namespace}:")
    return f"{namespace}:unreadable:{rest}"


def store_of(namespace: str, key: str) -> str:
    """The metric's `store` label of a key: its first part after the namespace (a fixed set:
    engaged, reset, seq, order, leader, instance, instances, state, watchdog, heartbeat...)."""
    rest = key[len(namespace) + 1 :] if key.startswith(f"{namespace}:") else key
    return rest.split(":", 1)[0] or "other"

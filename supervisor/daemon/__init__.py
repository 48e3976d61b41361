"""The daemon, one module per concern:

- `lifecycle`: start, signals, reload, two-phase stop (`Supervisor`);
- `assembly`: everything built from the config, replaced whole by a reload;
- `context` and `runtime`: what the parts share (state only), what was learned;
- `problems`: the supervisor's own problems (health DEGRADED), typed by source;
- `tasks`: background work the shutdown waits for;
- `display`: the global answer derived and shown (metrics, STATUS, journal);
- `publishing`: writes to the supervisor's own Redis, best effort;
- `auditing`: the audit records, stamped with the fencing token;
- `schedule`: the jobs and deadline re-arming;
- `cycle`: one watchdog run (verdicts -> policy -> decisions);
- `acting`: engaging actuators, escalation, HA-held decisions;
- `engagements`: the latches held and the orders not yet confirmed (pending, shared);
- `repairs`: the repairs watchdogs propose (lock_ttl's release_orphans), audited;
- `reconcile`: restore, resets, real state, auto-reset;
- `housekeeping`: keepalive, heartbeat, deadman beats, audit replay.
"""

from supervisor.daemon.lifecycle import Supervisor

__all__ = ["Supervisor"]

"""The daemon, one module per concern:

- `lifecycle`: start, signals, reload, two-phase stop (`Supervisor`);
- `assembly`: everything built from the config, replaced whole by a reload;
- `context` and `runtime`: what the parts share, what was learned, the global answer;
- `schedule`: the jobs and deadline re-arming;
- `cycle`: one watchdog run (verdicts -> policy -> decisions);
- `acting`: engaging actuators, latching, escalation, pending orders;
- `repairs`: the repairs watchdogs propose (lock_ttl's release_orphans), audited;
- `reconcile`: restore, resets, real state, auto-reset;
- `housekeeping`: keepalive, heartbeat, deadman beats, audit replay.
"""

from supervisor.daemon.lifecycle import Supervisor

__all__ = ["Supervisor"]

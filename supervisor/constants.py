"""Every exit code and magic duration in one place (Redis key names: supervisor/keys.py)."""

# Exit codes (sysexits.h and Nagios plugin conventions).
EX_OK = 0
EX_CONFIG = 78
EX_REFUSED = 1  # a manual command refused (short reason, rate limit, breach)
EX_FAILED = 1  # a manual command or `events` could not reach Redis / PostgreSQL
EX_UNIT_PROBLEM = 1  # `unit check`: the unit's sandbox would hide this install
EX_PIPE = 141  # stdout closed by the reader (128 + SIGPIPE, what a shell shows)
NAGIOS_OK, NAGIOS_WARNING, NAGIOS_CRITICAL, NAGIOS_UNKNOWN = 0, 1, 2, 3
STATUS_NO_LIVE_SUPERVISOR = 2

# The housekeeping cycle: heartbeat, published state, systemd WATCHDOG=1.
HOUSEKEEPING_INTERVAL_S = 1.0
# A store that still reads engaged this long after a manual reset is the operator's problem
# to be told about (journal once, DEGRADED), never a reason to engage it again.
RELEASE_WAIT_WARN_S = 60.0
HEARTBEAT_TTL_CYCLES = 3  # the heartbeat expires within 3 quiet cycles
WATCHDOG_LATE_FACTOR = 2.0  # a watchdog that has not run within 2x its interval is late

# A deadline re-run lands this far after a threshold so that `age > threshold` holds (the
# scheduler never runs a job early; were it to, the re-run would just come again 10 ms later).
DEADLINE_EPSILON_S = 0.001

# Two-phase shutdown: how long in-flight checks and actions may finish.
SHUTDOWN_GRACE_S = 1.5

# APScheduler: a run later than this is skipped (coalesced into the next one).
MISFIRE_GRACE_S = 1

# Default config search order when --config is not given.
CONFIG_ENV = "SUPERVISOR_CONFIG"
CONFIG_PATHS = ("/etc/trading-supervisor/supervisor.toml", "config/supervisor.toml")

# The audit trail (supervisor/publish/audit/): the `{ns}:events` stream, outbox files.
EVENTS_STREAM_MAXLEN = 10_000  # XADD MAXLEN ~
AUDIT_OUTBOX_FILE = "audit-outbox.jsonl"
AUDIT_REJECTED_FILE = "audit-outbox.rejected.jsonl"  # torn or unusable outbox lines, kept
AUDIT_TABLE = "supervisor_events"
AUDIT_CONNECT_TIMEOUT_S = 2.0  # connect and statement timeout of the audit writer
AUDIT_REDIS_TIMEOUT_S = 1.0
AUDIT_RETRY_MIN_S, AUDIT_RETRY_MAX_S = 1.0, 5.0  # Postgres reconnect backoff after a failure
AUDIT_REPLAY_BATCH = 200  # rows per INSERT batch
AUDIT_REPLAY_MAX_EVENTS = 2_000  # outbox lines replayed per replay() call (one cycle)
EVENTS_POLL_S = 1.0  # `events --follow`
EVENTS_FOLLOW_LOOKBACK_S = 30.0  # re-read this far back while following (late inserts)
EVENTS_READ_LIMIT = 10_000  # rows per read of the trail

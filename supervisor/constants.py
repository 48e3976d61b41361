"""Every Redis key suffix, exit code and magic duration in one place."""

# Exit codes (sysexits.h and Nagios plugin conventions).
EX_OK = 0
EX_CONFIG = 78
EX_REFUSED = 1  # a manual command refused (short reason, rate limit, breach)
NAGIOS_OK, NAGIOS_WARNING, NAGIOS_CRITICAL, NAGIOS_UNKNOWN = 0, 1, 2, 3
STATUS_NO_LIVE_SUPERVISOR = 2

# Redis keys published under the configured namespace: f"{ns}:{SUFFIX}".
STATE_KEY = "state"
WATCHDOG_KEY = "watchdog"  # f"{ns}:watchdog:{name}"
HEARTBEAT_KEY = "heartbeat"

# The housekeeping cycle: heartbeat, published state, systemd WATCHDOG=1.
HOUSEKEEPING_INTERVAL_S = 1.0
HEARTBEAT_TTL_CYCLES = 3  # the heartbeat expires within 3 quiet cycles
WATCHDOG_LATE_FACTOR = 2.0  # a watchdog that has not run within 2x its interval is late

# A deadline re-run lands this far after a threshold so that `age > threshold` holds.
DEADLINE_EPSILON_S = 0.002

# Two-phase shutdown: how long in-flight checks and actions may finish.
SHUTDOWN_GRACE_S = 1.5

# APScheduler: a run later than this is skipped (coalesced into the next one).
MISFIRE_GRACE_S = 1

# Default config search order when --config is not given.
CONFIG_ENV = "SUPERVISOR_CONFIG"
CONFIG_PATHS = ("/etc/trading-supervisor/supervisor.toml", "config/supervisor.toml")

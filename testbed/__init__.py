"""Real servers and the simulated trading stack that the tests, the demo and the benchmarks run
against.

Everything binds to 127.0.0.1 on a free port, lives in a temporary directory, waits with a
bound, and is stopped by the PID we started.
"""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent  # daemons and CLIs run from here

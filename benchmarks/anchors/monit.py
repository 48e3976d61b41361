"""monit 5.33 as an anchor: `set daemon 1` (a cycle a second) and a `check program` whose
script exits 1 once the feed's tick is more than 2 s old (redis-cli GET, then shell
arithmetic), with `if status != 0 then exec` a script that POSTs the kill with curl. Run in
the foreground (`monit -I`) as a child of the benchmark, its control, state and log files in
a temporary directory; it listens on no port (no `set httpd`)."""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

from benchmarks.anchors.children import Child, running

MONIT = shutil.which("monit") or "/usr/bin/monit"
REDIS_CLI = shutil.which("redis-cli") or "/usr/bin/redis-cli"
CURL = shutil.which("curl") or "/usr/bin/curl"

AGE_CHECK = """#!/bin/sh
# Exit 1 when the last tick (epoch ms in {key}) is more than {breach_ms} ms old.
last=$({redis_cli} -h 127.0.0.1 -p {port} --raw GET {key}) || exit 2
now=$(date +%s%3N)
[ -n "$last" ] && [ $((now - last)) -le {breach_ms} ]
"""

KILL = """#!/bin/sh
exec {curl} -s -o /dev/null -m 5 -X POST -H 'Content-Type: application/json' \\
  -d '{{"reason": "monit: feed_age failed"}}' {url}
"""

MONITRC = """set daemon 1
set logfile {directory}/monit.log
set pidfile {directory}/monit.pid
set idfile {directory}/monit.id
set statefile {directory}/monit.state

check program feed_age with path "{directory}/age_check"
    if status != 0 then exec "{directory}/kill"
"""


def script(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    path.chmod(0o755)


@contextlib.contextmanager
def running_monit(
    directory: Path, redis_port: int, key: str, kill_url: str, breach_ms: int = 2000
) -> Iterator[Child]:
    directory.mkdir(parents=True, exist_ok=True)
    script(
        directory / "age_check",
        AGE_CHECK.format(redis_cli=REDIS_CLI, port=redis_port, key=key, breach_ms=breach_ms),
    )
    script(directory / "kill", KILL.format(curl=CURL, url=kill_url))
    control = directory / "monitrc"
    control.write_text(MONITRC.format(directory=directory), encoding="utf-8")
    control.chmod(0o600)  # monit refuses a control file others can read
    with running("monit", [MONIT, "-I", "-c", str(control)], directory) as monit:
        time.sleep(3)  # a cycle to start the first check, one to read its status
        monit.check_alive()
        yield monit

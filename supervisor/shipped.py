"""The files the wheel carries beside the code, and `install-files`, which puts them in place.

supervisor/share/ holds the systemd unit, the Prometheus rules (and their promtool tests),
the Grafana dashboard, the Redis ACLs and the example configs. In the source tree they are
symlinks to deploy/ and config/, the one copy that is edited and tested; a wheel holds the
files themselves. So an install needs no checkout: `pip install` the wheel, then
`trading-supervisor install-files`.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path, PurePosixPath

from supervisor.constants import CONFIG_PATHS

SHARE = "/usr/share/trading-supervisor"
CREDENTIALS = "/etc/trading-supervisor/credentials"
EXAMPLES = ("nautilus_hmm", "quantum_metrics", "quantzoo", "spx_command_center", "track7_ops")


@dataclass(frozen=True)
class Shipped:
    """One shipped file: where it is in the package, where it goes, with which mode."""

    source: str  # under supervisor/share/
    target: str  # absolute, under --root
    mode: int = 0o644
    keep_existing: bool = False  # the operator's own copy (the config) is never replaced


SHIPPED = (
    Shipped("systemd/trading-supervisor.service", "/etc/systemd/system/trading-supervisor.service"),
    Shipped("config/supervisor.toml", CONFIG_PATHS[0], keep_existing=True),
    Shipped("config/supervisor.toml", f"{SHARE}/config/supervisor.toml"),
    *(
        Shipped(f"config/examples/{name}", f"{SHARE}/config/examples/{name}")
        for name in (*(f"{e}.toml" for e in EXAMPLES), "STACK_CONTRACT.md")
    ),
    Shipped("prometheus/supervisor-rules.yml", f"{SHARE}/prometheus/supervisor-rules.yml"),
    Shipped(
        "prometheus/supervisor-rules.test.yml", f"{SHARE}/prometheus/supervisor-rules.test.yml"
    ),
    Shipped("grafana/trading-supervisor.json", f"{SHARE}/grafana/trading-supervisor.json"),
    Shipped("redis/supervisor.acl", f"{SHARE}/redis/supervisor.acl"),
    Shipped("redis/sentinel.acl", f"{SHARE}/redis/sentinel.acl"),
    Shipped("supervisord/trading-supervisor.conf", f"{SHARE}/supervisord/trading-supervisor.conf"),
)
# The unit loads this credential, and systemd refuses to start a unit whose credential file
# is missing: an empty one (Redis without a password) is created if there is none.
REDIS_PASSWORD = f"{CREDENTIALS}/redis_password"


def content(shipped: Shipped) -> bytes:
    return resources.files("supervisor").joinpath("share", shipped.source).read_bytes()


def under(root: Path, target: str) -> Path:
    return root.joinpath(*PurePosixPath(target).parts[1:])


def install(root: Path) -> list[str]:
    """Put every shipped file in place under `root`; one line per file saying what was done.
    Raises OSError (permissions, a full disk) for the caller to report."""
    done = []
    for shipped in SHIPPED:
        path = under(root, shipped.target)
        if shipped.keep_existing and path.exists():
            done.append(f"kept      {path} (yours: never replaced)")
            continue
        _write(path, content(shipped), shipped.mode)
        done.append(f"installed {path}")
    credentials = under(root, CREDENTIALS)
    credentials.mkdir(mode=0o700, parents=True, exist_ok=True)
    password = under(root, REDIS_PASSWORD)
    if not password.exists():
        _write(password, b"", 0o600)
        done.append(f"created   {password} (empty: Redis without a password)")
    return done


def _write(path: Path, data: bytes, mode: int) -> None:
    """Atomically: a reader (systemd, Prometheus) never sees half a file."""
    path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise

"""Install problems `unit check` warns about before systemd finds them the hard way.

The shipped unit sets ProtectHome=yes: /root, /home and /run/user are empty and inaccessible
to the daemon. A venv made from a Python under one of them (pyenv's ~/.pyenv, a user's own
build) or installed there cannot even be executed: systemd reports status=203/EXEC and
restarts it every RestartSec= without end. The venv's bin/python is a symlink to the real
interpreter, so it is followed before asking where it lives.
"""

from __future__ import annotations

import sys
from pathlib import Path

import supervisor

HIDDEN_BY_PROTECT_HOME = (Path("/root"), Path("/home"), Path("/run/user"))
REMEDY = (
    "install into a venv made with a system Python, outside /root, /home and /run/user, e.g."
    " /usr/bin/python3 -m venv /opt/trading-supervisor/venv"
)


def protect_home_warnings(
    executable: str = sys.executable, package: str = supervisor.__file__
) -> list[str]:
    """One warning per place ProtectHome=yes would hide: the interpreter, the package."""
    warnings = []
    for what, path in (("Python", executable), ("the trading-supervisor package", package)):
        resolved = Path(path).resolve()
        hidden = next((h for h in HIDDEN_BY_PROTECT_HOME if resolved.is_relative_to(h)), None)
        if hidden is not None:
            warnings.append(
                f"{what} is under {hidden} ({resolved}): the unit's ProtectHome=yes hides {hidden}"
                f" from the daemon and systemd cannot start it (status=203/EXEC); {REMEDY}"
            )
    return warnings

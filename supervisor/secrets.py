"""Secret values in config: "${ENV_NAME}" interpolation or "cred:NAME" (systemd LoadCredential=).

Error messages name the variable or credential, never the value.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from pydantic import SecretStr

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_CRED_NAME = re.compile(r"^[A-Za-z0-9_.@-]+$")


def resolve_secret(value: object) -> SecretStr:
    if isinstance(value, SecretStr):
        return value
    if not isinstance(value, str):
        raise ValueError("a secret must be a string such as '${ENV_NAME}' or 'cred:NAME'")
    resolved = (
        _read_credential(value.removeprefix("cred:"))
        if value.startswith("cred:")
        else _ENV_REF.sub(_env_value, value)
    )
    if any(0xD800 <= ord(char) <= 0xDFFF for char in resolved):  # undecodable environment bytes
        raise ValueError("the secret holds bytes that are not valid UTF-8")
    return SecretStr(resolved)


def _env_value(match: re.Match[str]) -> str:
    name = match.group(1)
    if name not in os.environ:
        raise ValueError(f"environment variable {name} is not set")
    return os.environ[name]


def _read_credential(name: str) -> str:
    if not _CRED_NAME.match(name):
        raise ValueError(f"invalid credential name {name!r}")
    directory = os.environ.get("CREDENTIALS_DIRECTORY")
    if not directory:
        raise ValueError(f"cred:{name} needs $CREDENTIALS_DIRECTORY (systemd LoadCredential=)")
    try:
        return (Path(directory) / name).read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as exc:
        raise ValueError(f"cannot read credential {name}: {exc.strerror}") from None

"""Secret values in config: "${ENV_NAME}" interpolation or "cred:NAME" (systemd LoadCredential=),
and masking the credentials a URL carries.

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


# --- credentials in URLs: `config show`, action descriptions, every log record ----------------

MASK = "**********"
# Query (or fragment) parameter names whose values are credentials. A name matches when one
# of its words is one of these (`api_key`, `X-Amz-Signature`, `client_secret`) or when it ends
# with a long one written as one word (`accessToken`, `apiKey`).
_SECRET_WORDS = frozenset(
    {"token", "secret", "password", "passwd", "pass", "pwd", "key", "apikey", "signature", "sig"}
)
_SECRET_SUFFIXES = ("token", "secret", "password", "passwd", "apikey", "signature")
_URL = re.compile(r"""[A-Za-z][A-Za-z0-9+.-]*://[^\s'"<>`]+""")
_PARAMETER = re.compile(r"(?<=[?&;#])([^=&;#]+)=([^&;#]*)")


def is_secret_parameter(name: str) -> bool:
    lowered = name.lower()
    words = re.split(r"[^a-z0-9]+", lowered)
    return any(w in _SECRET_WORDS for w in words) or lowered.endswith(_SECRET_SUFFIXES)


def mask_url(url: str) -> str:
    """`url` with its credentials masked: the password in the userinfo, and the value of every
    query or fragment parameter named like a credential. The rest is left byte for byte."""
    scheme, separator, rest = url.partition("://")
    if not separator:
        return url
    authority_end = next((i for i, c in enumerate(rest) if c in "/?#"), len(rest))
    authority, tail = rest[:authority_end], rest[authority_end:]
    userinfo, at, host = authority.rpartition("@")
    if at and ":" in userinfo:
        authority = f"{userinfo.partition(':')[0]}:{MASK}@{host}"
    return f"{scheme}://{authority}{_PARAMETER.sub(_masked_parameter, tail)}"


def _masked_parameter(match: re.Match[str]) -> str:
    name = match.group(1)
    return f"{name}={MASK}" if is_secret_parameter(name) else match.group(0)


def mask_urls(text: str) -> str:
    """`text` (a log line, an exception's message) with every URL in it masked."""
    return _URL.sub(lambda m: mask_url(m.group(0)), text) if "://" in text else text

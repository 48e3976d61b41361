"""Secret values in config: "${ENV_NAME}" interpolation or "cred:NAME" (systemd LoadCredential=),
and masking the credentials a URL carries.

Error messages name the variable or credential, never the value.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import unquote_plus

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
# Query (or fragment) parameters whose values are shown: names known to carry no credential.
# Every other value is masked: a deny-list of credential names always misses one (`auth`,
# `jwt`, `code`, `hmac`...). Compared after percent-decoding and lower-casing (`%74oken`).
HARMLESS_PARAMETERS = frozenset(
    {
        "application_name",
        "connect_timeout",
        "db",
        "dbname",
        "format",
        "instrument",
        "limit",
        "query",
        "socket_connect_timeout",
        "socket_timeout",
        "ssl_ca_certs",
        "ssl_cert_reqs",
        "sslmode",
        "sslrootcert",
        "symbol",
        "target_session_attrs",
        "timeout",
        "venue",
    }
)
_URL = re.compile(r"""[A-Za-z][A-Za-z0-9+.-]*://[^\s'"<>`]+""")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:(?=//)")
_PARAMETER_SEPARATORS = re.compile(r"([&;])")


def is_harmless_parameter(name: str) -> bool:
    """Whether a query parameter's value may be shown; `name` as written (percent-encoded)."""
    return unquote_plus(name, errors="replace").strip().lower() in HARMLESS_PARAMETERS


def mask_url(url: str) -> str:
    """`url` with its credentials masked: the whole user part (a token is often the user name
    alone: `https://TOKEN@host`, `redis://PASSWORD@host`), and the value of every query or
    fragment parameter not known to be harmless. The rest is left byte for byte. A URL
    without a scheme (`user:pw@host/x`, `//TOKEN@host`) is read the same way."""
    scheme = _SCHEME.match(url)
    head = scheme.group(0) if scheme else ""
    rest = url[len(head) :]
    slashes = "//" if rest.startswith("//") else ""
    rest = rest[len(slashes) :]
    if not head and not slashes and not _has_userinfo(rest):
        return _masked_tail(url) if url.startswith(("?", "#")) else url
    authority_end = next((i for i, c in enumerate(rest) if c in "/?#"), len(rest))
    authority, tail = rest[:authority_end], rest[authority_end:]
    _userinfo, at, host = authority.rpartition("@")
    if at:
        authority = f"{MASK}@{host}"
    return f"{head}{slashes}{authority}{_masked_tail(tail)}"


def _has_userinfo(text: str) -> bool:
    """`user:pw@host...` without a scheme: an @ before the path, and no space (prose)."""
    authority = re.split(r"[/?#]", text, maxsplit=1)[0]
    return "@" in authority and not any(c.isspace() for c in authority)


def _masked_tail(tail: str) -> str:
    """The path as written; the query and the fragment with their values masked."""
    path_end = next((i for i, c in enumerate(tail) if c in "?#"), len(tail))
    path, rest = tail[:path_end], tail[path_end:]
    query, hash_, fragment = rest.partition("#")
    masked = _masked_parameters(query[1:]) if query else ""
    masked_query = f"?{masked}" if query else ""
    return f"{path}{masked_query}{hash_}{_masked_parameters(fragment) if hash_ else ''}"


def _masked_parameters(text: str) -> str:
    """`a=1&b=2;c`: each value masked unless its name is harmless; a bare item (no `=`) may
    be a token itself, so it is masked unless it is a harmless name."""
    parts = _PARAMETER_SEPARATORS.split(text)
    for index in range(0, len(parts), 2):
        name, equals, _value = parts[index].partition("=")
        if is_harmless_parameter(name):
            continue
        if equals:
            parts[index] = f"{name}={MASK}"
        elif name:
            parts[index] = MASK
    return "".join(parts)


def mask_urls(text: str) -> str:
    """`text` (a log line, an exception's message) with every URL in it masked."""
    return _URL.sub(lambda m: mask_url(m.group(0)), text) if "://" in text else text

"""`redis+sentinel://` URLs: the sentinels to ask, the service whose master to use, its database.

    redis+sentinel://[user:password@]host1:26379,host2:26379,host3:26379/service[/db][?options]
    rediss+sentinel://...                  TLS to the sentinels and to the master alike

The userinfo logs in to the master (as `username` and `password` of [redis] do); the
sentinels' own credentials, if they have any, are `sentinel_username` and `sentinel_password`
of [redis]. The options are the TLS ones of a `rediss://` URL (`ssl_ca_certs`, `ssl_certfile`,
`ssl_keyfile`), only with `rediss+sentinel://`; they apply to the sentinels and the master.

redis-py has no parser for these URLs, so this is ours. A message names the part that is
wrong and never shows the userinfo. An unescaped `/`, `?` or `#` in a password would end the
userinfo early and show the rest as a host: an `@` after the sentinels is refused as such.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote

from supervisor.config.network import check_host, check_port

SCHEMES = {"redis+sentinel": False, "rediss+sentinel": True}  # scheme -> TLS
DEFAULT_PORT = 26379
TLS_OPTIONS = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile")
MAX_DB = 2**31 - 1  # Redis' `databases` is an int


@dataclass(frozen=True)
class SentinelUrl:
    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int = 0
    tls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls_options: dict[str, str] = field(default_factory=dict)


def is_sentinel_url(url: str) -> bool:
    return url.partition("://")[0] in SCHEMES


def check_sentinel_login(url: str, username: str | None, password: object | None) -> None:
    """The sentinels' login means nothing without sentinels: a typo of the master's."""
    if (username is not None or password is not None) and not is_sentinel_url(url):
        raise ValueError("sentinel_username and sentinel_password need a redis+sentinel:// url")


def parse_sentinel_url(url: str) -> SentinelUrl:
    """The parts of a sentinel URL; ValueError names the part that is wrong."""
    scheme, _, rest = url.partition("://")
    tls = SCHEMES[scheme]
    authority_end = next((i for i, c in enumerate(rest) if c in "/?#"), len(rest))
    authority, after = rest[:authority_end], rest[authority_end:]
    if "@" in after:  # mask_url, too, reads the userinfo only before the first / ? #
        raise ValueError("an '@' after the sentinels: percent-encode / ? # @ in the password")
    if "#" in after:
        raise ValueError("a Redis URL has no #fragment")
    path, _, query = after.partition("?")
    userinfo, at, hosts = authority.rpartition("@")
    username, password = _credentials(userinfo) if at else (None, None)
    if not path.strip("/"):
        raise ValueError("names no service: write the master's name after the sentinels, /NAME")
    path = path[1:]
    service, db = _service_and_db(path)
    return SentinelUrl(
        sentinels=_sentinels(hosts),
        service=service,
        db=db,
        tls=tls,
        username=username,
        password=password,
        tls_options=_options(query, tls),
    )


def _credentials(userinfo: str) -> tuple[str | None, str | None]:
    user, colon, password = userinfo.partition(":")
    return unquote(user) or None, unquote(password) if colon else None


def _sentinels(hosts: str) -> tuple[tuple[str, int], ...]:
    if not hosts:
        raise ValueError("names no sentinel: list them as host:port,host:port after ://")
    found = tuple(_sentinel(n, text) for n, text in enumerate(hosts.split(","), start=1))
    if len(set(found)) != len(found):
        raise ValueError("names the same sentinel twice")
    return found


def _sentinel(number: int, text: str) -> tuple[str, int]:
    """ "host", "host:port" or "[ipv6]:port"; the port defaults to 26379."""
    where = f"sentinel {number} ({text[:60]!r})" if text else f"sentinel {number}"
    if not text:
        raise ValueError(f"{where} is empty (two commas in a row?)")
    if text.startswith("["):
        host, bracket, port = text[1:].partition("]")
        if not bracket or (port and not port.startswith(":")):
            raise ValueError(f"{where}: write an IPv6 address as [address]:port")
        port = port[1:]
    else:
        host, _, port = text.partition(":")
    try:
        check_host(host) if host else _fail("names no host")
        return host, check_port(int(port)) if port else DEFAULT_PORT
    except ValueError as exc:
        message = "the port is not a number" if "invalid literal" in str(exc) else str(exc)
        raise ValueError(f"{where}: {message}") from None


def _fail(message: str) -> None:
    raise ValueError(message)


def _service_and_db(path: str) -> tuple[str, int]:
    service, _, db_text = path.partition("/")
    service = unquote(service)
    if not service or not all("!" <= c <= "~" for c in service):
        raise ValueError("the service name must be printable ASCII without spaces")
    db_text = db_text.rstrip("/")
    if not db_text:
        return service, 0
    if not db_text.isdigit() or not 0 <= int(db_text) <= MAX_DB:
        raise ValueError(f"the database {db_text[:20]!r} is not a number (0, 1, ...)")
    return service, int(db_text)


def _options(query: str, tls: bool) -> dict[str, str]:
    """The TLS options; anything else is refused by name (never by value)."""
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise ValueError("the options after ? are not name=value pairs joined by &") from None
    options: dict[str, str] = {}
    for name, value in pairs:
        if name.startswith("sentinel_"):
            raise ValueError(f"{name[:40]!r}: set it in [redis], not in the URL (a secret)")
        if name not in TLS_OPTIONS:
            raise ValueError(f"unknown option {name[:40]!r}: only {', '.join(TLS_OPTIONS)}")
        if not tls:
            raise ValueError(f"{name} needs rediss+sentinel:// (TLS)")
        if name in options:
            raise ValueError(f"option {name} is given twice")
        options[name] = value
    return options

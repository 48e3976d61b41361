"""The field types every part of the configuration shares, and the checks behind them.

Durations are converted to seconds here, once (fields named `*_s`, TOML keys without the
suffix). Secrets become SecretStr. `Strict` models refuse unknown keys and are frozen.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Mapping
from typing import Annotated, Any, Literal
from urllib.parse import SplitResult, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx
import jmespath
from jmespath.exceptions import JMESPathError
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    WithJsonSchema,
)
from redis.asyncio import ConnectionPool

from supervisor.config.network import address, check_host, check_port
from supervisor.config.sentinel_url import is_sentinel_url, parse_sentinel_url
from supervisor.quantities import parse_duration
from supervisor.secrets import resolve_secret


def check_jmespath(expression: str) -> str:
    try:
        jmespath.compile(expression)
    except JMESPathError as exc:
        raise ValueError(f"invalid jmespath expression {expression!r}: {exc}") from None
    return expression


def check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown timezone {name!r}") from None
    return name


_INVISIBLE = ("Cc", "Cf", "Cs")  # control, format (zero-width...), lone surrogates (env)
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # an RFC 9110 token
_LISTEN = re.compile(r"^(?:\[(?P<ipv6>[^\]]+)\]|(?P<host>[^:\[\]]+)):(?P<port>\d{1,5})$")


def check_listen(listen: str) -> str:
    """ "host:port" or "[ipv6]:port", checked here: `run` would otherwise die in bind()."""
    match = _LISTEN.match(listen)
    if not match:
        raise ValueError("use 'host:port' or '[ipv6]:port', e.g. '127.0.0.1:9464'")
    if match["ipv6"] is not None:
        address(match["ipv6"], ipaddress.IPv6Address)
    else:
        check_host(match["host"])
    check_port(int(match["port"]))
    return listen


def _url_port(parts: SplitResult) -> None:
    try:
        port = parts.port
    except ValueError:  # not a number, or beyond 65535
        raise ValueError("the port is not a number in 1-65535") from None
    if port is not None:
        check_port(port)


def _url_characters(url: str) -> None:
    """No spaces, control characters or undecodable bytes (from the environment): clients
    raise on them, at connect time, outside the errors they are expected to raise."""
    if any(ord(c) <= 0x20 or unicodedata.category(c) in _INVISIBLE for c in url):
        raise ValueError("a URL cannot contain spaces or control characters")


def check_http_url(url: str) -> str:
    """An http(s) URL with a host and a usable port, that httpx can send to. Checked at
    load time so that a kill switch or a health check does not fail at its first call."""
    _url_characters(url)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must start with http:// or https:// and name a host")
    if not parts.hostname:
        raise ValueError("the URL names no host")
    _url_port(parts)
    try:
        httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise ValueError(f"not a usable URL: {exc}") from None
    return url


def check_redis_url(url: str) -> str:
    scheme = url.partition("://")[0]
    if is_sentinel_url(url):
        _url_characters(url)
        parse_sentinel_url(url)  # its messages name the part, never the userinfo
        return url
    if scheme not in ("redis", "rediss", "unix") or "://" not in url:
        raise ValueError(
            "must start with redis://, rediss://, unix://, redis+sentinel:// or rediss+sentinel://"
        )
    _url_characters(url)
    if scheme != "unix":
        _url_port(urlsplit(url))
    try:
        ConnectionPool.from_url(url)  # redis-py's own parser; builds a pool, opens nothing
    except ValueError as exc:  # its messages name the part, never the password
        raise ValueError(f"not a usable Redis URL: {exc}") from None
    return url


# Bounds on durations. Every duration: at most a year, far below where the scheduler's and
# datetime's arithmetic overflow (an interval of 1e12 s crashed `run`), and longer than any
# threshold a live trading stack can mean. An interval or a timeout below 10 ms is a typo:
# the event loop cannot keep such a schedule, and Postgres reads a statement_timeout that
# rounds to 0 ms as "no timeout at all".
MAX_DURATION_S = 366 * 86400.0
MIN_INTERVAL_S, MAX_INTERVAL_S = 0.01, 86400.0
MIN_TIMEOUT_S, MAX_TIMEOUT_S = 0.01, 600.0


def between(low: float, high: float) -> AfterValidator:
    """A duration check whose message shows the bounds as one would write them in the file
    ("at least 10ms", "at most 24h"), not as pydantic's seconds."""

    def check(seconds: float) -> float:
        if seconds < low:
            raise ValueError(f"must be at least {as_written(low)}")
        if seconds > high:
            raise ValueError(f"must be at most {as_written(high)}")
        return seconds

    return AfterValidator(check)


def as_written(seconds: float) -> str:
    """A round bound in the config's own duration syntax: 0.01 -> "10ms", 86400 -> "24h"."""
    for unit, size in (("h", 3600.0), ("m", 60.0), ("s", 1.0)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds * 1000:g}ms"


def _first_invisible(text: str, allowed: str = "") -> str | None:
    return next(
        (c for c in text if c not in allowed and unicodedata.category(c) in _INVISIBLE), None
    )


def check_text(text: str) -> str:
    """A name in another system (Redis key, hash field, instrument, flag value, label): what
    is written in the file must be what is looked up, so nothing invisible. A blank one, or
    one with spaces around it, is a typo that would watch (or set) the wrong thing."""
    if not text.strip():
        raise ValueError("must not be empty or only whitespace")
    if text != text.strip():
        raise ValueError("has leading or trailing whitespace (invisible in the file: a typo?)")
    if (char := _first_invisible(text)) is not None:
        raise ValueError(f"contains the invisible character U+{ord(char):04X}")
    return text


def check_query(text: str) -> str:
    """A query (SQL, PromQL): multi-line is fine; blank or other control characters are not."""
    if not text.strip():
        raise ValueError("must not be empty or only whitespace")
    if (char := _first_invisible(text, allowed="\t\n\r")) is not None:
        raise ValueError(f"contains the invisible character U+{ord(char):04X}")
    return text


def check_header_name(name: str) -> str:
    if not _HEADER_NAME.match(name):
        raise ValueError(f"{name[:40]!r} is not an HTTP header name")
    return name


def check_headers(headers: Mapping[str, SecretStr]) -> Mapping[str, SecretStr]:
    """Names are tokens; values (secrets: never shown) are printable ASCII on one line, what
    httpx can send. Otherwise the request fails when it is sent: for a kill switch, when it
    matters most."""
    for name, value in headers.items():
        check_header_name(name)
        if not all(char == "\t" or " " <= char <= "~" for char in value.get_secret_value()):
            raise ValueError(
                f"{name}: the value holds a character an HTTP header cannot carry"
                " (only printable ASCII on one line)"
            )
    return headers


# The JSON Schema of each duration type (`config schema`): a string such as "250ms", or a
# number of seconds within the type's bounds. A pattern cannot compare magnitudes across
# units, so it refuses a string only where it can say so exactly: "0s" where 0 is refused,
# below 10ms written in ms or s for an interval or a timeout. Upper bounds, and "0.0001m",
# are the loader's alone (docs/configuration.md, "What the JSON Schema checks").
_ANY = r"\d+(\.\d+)?"
_NONZERO = r"\d*[1-9]\d*(\.\d+)?|\d+\.\d*[1-9]\d*"
_AT_LEAST_10_MS = r"0*[1-9]\d+(\.\d+)?"
_AT_LEAST_10_MS_IN_S = r"\d*[1-9]\d*(\.\d+)?|\d+\.(0[1-9]|[1-9])\d*"


def duration_pattern(ms: str, s: str, m_h: str) -> str:
    """A duration string whose number matches `ms`, `s` (also bare seconds) or `m_h`."""
    return rf"^\s*(({ms})\s*ms|({s})\s*s?|({m_h})\s*[mh])\s*$"


def duration_json(pattern: str, low: float, high: float, *, above_low: bool = False) -> Any:
    bound = "exclusiveMinimum" if above_low else "minimum"
    number = {"type": "number", bound: low, "maximum": high}
    return WithJsonSchema({"anyOf": [{"type": "string", "pattern": pattern}, number]})


def above_zero(seconds: float) -> float:
    if seconds <= 0:
        raise ValueError("must be above 0")
    return seconds


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    between(0.0, MAX_DURATION_S),
    duration_json(duration_pattern(_ANY, _ANY, _ANY), 0.0, MAX_DURATION_S),
]
POSITIVE_DURATION_PATTERN = duration_pattern(_NONZERO, _NONZERO, _NONZERO)
PositiveDuration = Annotated[
    Duration,
    AfterValidator(above_zero),
    duration_json(POSITIVE_DURATION_PATTERN, 0.0, MAX_DURATION_S, above_low=True),
]
_AT_LEAST_10MS = duration_pattern(_AT_LEAST_10_MS, _AT_LEAST_10_MS_IN_S, _NONZERO)
Interval = Annotated[
    Duration,
    between(MIN_INTERVAL_S, MAX_INTERVAL_S),
    duration_json(_AT_LEAST_10MS, MIN_INTERVAL_S, MAX_INTERVAL_S),
]
Timeout = Annotated[
    Duration,
    between(MIN_TIMEOUT_S, MAX_TIMEOUT_S),
    duration_json(_AT_LEAST_10MS, MIN_TIMEOUT_S, MAX_TIMEOUT_S),
]
Secret = Annotated[SecretStr, BeforeValidator(resolve_secret)]
Headers = Annotated[dict[str, Secret], AfterValidator(check_headers)]
# Patterns for the JSON Schema: what a pattern can say of the checks above (the loader's
# checks are the whole rule; the schema may let through what they refuse, never the reverse).
PORT_PATTERN = r"0*([1-9]\d{0,3}|[1-5]\d{4}|6[0-4]\d{3}|65[0-4]\d{2}|655[0-2]\d|6553[0-5])"
TEXT_PATTERN = r"^\S(.*\S)?$"  # not blank, no space around it
HTTP_URL_PATTERN = (
    rf"^[hH][tT][tT][pP][sS]?://([^\s/?#]*@)?(\[[^\]\s]*\]|[^\s/?#@:\[\]]+)"
    rf"(:({PORT_PATTERN})?)?([/?#].*)?$"
)
LISTEN_PATTERN = rf"^(\[[^\]]+\]|[^:\[\]]+):{PORT_PATTERN}$"
HeaderName = Annotated[str, AfterValidator(check_header_name)]
Text = Annotated[
    str,
    AfterValidator(check_text),
    WithJsonSchema({"type": "string", "pattern": TEXT_PATTERN}),
]
Query = Annotated[str, AfterValidator(check_query)]
JmesPath = Annotated[str, AfterValidator(check_jmespath)]
HttpUrl = Annotated[
    str,
    AfterValidator(check_http_url),
    WithJsonSchema({"type": "string", "pattern": HTTP_URL_PATTERN}),
]
Listen = Annotated[
    str,
    AfterValidator(check_listen),
    WithJsonSchema({"type": "string", "pattern": LISTEN_PATTERN}),
]
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")]
Level = Literal["reduce_only", "halted", "flatten"]


class Strict(BaseModel):
    # allow_inf_nan=False: TOML has `nan` and `inf`, and every comparison with NaN is false,
    # so a `breach = nan` would never trip. No threshold, limit or amount may be either.
    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False
    )

"""The field types every part of the configuration shares, and the checks behind them.

Durations are converted to seconds here, once (fields named `*_s`, TOML keys without the
suffix). Secrets become SecretStr. `Strict` models refuse unknown keys and are frozen.
"""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jmespath
from jmespath.exceptions import JMESPathError
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, SecretStr

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


def check_redis_url(url: str) -> str:
    scheme = url.partition("://")[0]
    if scheme == "redis+sentinel":
        raise ValueError(
            "redis+sentinel:// is not supported yet: use redis://, rediss:// or unix://"
        )
    if scheme not in ("redis", "rediss", "unix") or "://" not in url:
        raise ValueError("must start with redis://, rediss:// or unix://")
    return url


Duration = Annotated[float, BeforeValidator(parse_duration)]
Secret = Annotated[SecretStr, BeforeValidator(resolve_secret)]
JmesPath = Annotated[str, AfterValidator(check_jmespath)]
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")]
Level = Literal["reduce_only", "halted", "flatten"]


class Strict(BaseModel):
    # allow_inf_nan=False: TOML has `nan` and `inf`, and every comparison with NaN is false,
    # so a `breach = nan` would never trip. No threshold, limit or amount may be either.
    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False
    )


def mask_url(url: str) -> str:
    """`url` with any password masked: in the userinfo and in a `password=` query parameter."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        netloc = netloc.replace(f":{parts.password}@", ":**********@", 1)
    query = [
        (k, "**********" if k.lower() in ("password", "pass", "pwd") else v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return urlunsplit(parts._replace(netloc=netloc, query=urlencode(query, safe="*")))

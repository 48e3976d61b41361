"""[redis] url = "redis+sentinel://...": what loads, what is refused and how, and that the
passwords (the master's in the URL, the sentinels' in [redis]) are never shown."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from supervisor.config.loading import load_config, redacted
from supervisor.config.sections import RedisSection
from supervisor.config.sentinel_url import SentinelUrl, parse_sentinel_url
from supervisor.config.types import check_redis_url
from supervisor.errors import ConfigError
from supervisor.secrets import MASK
from tests.unit.test_config import SPX, clean_environment, write

__all__ = ["clean_environment"]  # the autouse fixture: no SUPERVISOR_* from the environment

PASSWORD = "s3cr3t-p@ss/word?"  # percent-encoded below


def redis_problems(tmp_path: Path, redis: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, SPX, "[redis]\n" + redis))
    return caught.value.problems


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "redis+sentinel://10.0.0.1:26379,10.0.0.2:26379,10.0.0.3:26379/trading",
            SentinelUrl((("10.0.0.1", 26379), ("10.0.0.2", 26379), ("10.0.0.3", 26379)), "trading"),
        ),
        (
            "redis+sentinel://supervisor:pw%2F1@s1,s2.internal:5000/trading/3",
            SentinelUrl(
                (("s1", 26379), ("s2.internal", 5000)), "trading", 3, False, "supervisor", "pw/1"
            ),
        ),
        (
            "redis+sentinel://[::1]:26379,[fd00::2]/mymaster/",
            SentinelUrl((("::1", 26379), ("fd00::2", 26379)), "mymaster"),
        ),
        (
            "rediss+sentinel://:pw@s1:26380/trading?ssl_ca_certs=/etc/ts/ca.pem"
            "&ssl_certfile=/etc/ts/c.pem&ssl_keyfile=/run/k.pem",
            SentinelUrl(
                (("s1", 26380),),
                "trading",
                tls=True,
                password="pw",
                tls_options={
                    "ssl_ca_certs": "/etc/ts/ca.pem",
                    "ssl_certfile": "/etc/ts/c.pem",
                    "ssl_keyfile": "/run/k.pem",
                },
            ),
        ),
    ],
)
def test_sentinel_urls_load_with_every_part(
    tmp_path: Path, url: str, expected: SentinelUrl
) -> None:
    settings = load_config(write(tmp_path, SPX, f'[redis]\nurl = "{url}"'))
    assert settings.redis.url == url
    assert parse_sentinel_url(url) == expected


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("redis+sentinel:///trading", "names no sentinel"),
        ("redis+sentinel://s1:26379", "names no service"),
        ("redis+sentinel://s1:26379/", "names no service"),
        ("redis+sentinel://s1,,s2/trading", "sentinel 2 is empty (two commas in a row?)"),
        ("redis+sentinel://s1,s2:http/trading", "sentinel 2 ('s2:http'): the port is not a number"),
        ("redis+sentinel://s1:0/trading", "sentinel 1 ('s1:0'): port 0 is out of range 1-65535"),
        ("redis+sentinel://s1:70000/t", "sentinel 1 ('s1:70000'): port 70000 is out of range"),
        ("redis+sentinel://999.1.1.1/t", "sentinel 1 ('999.1.1.1'): '999.1.1.1' is not a valid"),
        ("redis+sentinel://-bad-/t", "sentinel 1 ('-bad-'): '-bad-' is not a host name"),
        ("redis+sentinel://:26379/t", "sentinel 1 (':26379'): names no host"),
        ("redis+sentinel://[::1/t", "sentinel 1 ('[::1'): write an IPv6 address as [address]:port"),
        ("redis+sentinel://s1,s1:26379/t", "names the same sentinel twice"),
        ("redis+sentinel://s1/trading/zero", "the database 'zero' is not a number"),
        ("redis+sentinel://s1/trading/1/2", "the database '1/2' is not a number"),
        ("redis+sentinel://s1/trading/-1", "the database '-1' is not a number"),
        ("redis+sentinel://s1/trading?ssl_ca_certs=/ca", "ssl_ca_certs needs rediss+sentinel://"),
        ("rediss+sentinel://s1/trading?socket_timeout=1", "unknown option 'socket_timeout'"),
        ("redis+sentinel://s1/trading?sentinel_password=x", "'sentinel_password': set it in"),
        ("rediss+sentinel://s1/t?ssl_keyfile=a&ssl_keyfile=b", "option ssl_keyfile is given twice"),
        ("redis+sentinel://s1/t#frag", "a Redis URL has no #fragment"),
        ("redis+sentinel://s1/tra ding", "a URL cannot contain spaces or control characters"),
        ("redis+sentinel://u:pa/ss@s1/t", "an '@' after the sentinels: percent-encode / ? # @"),
        ("redis+sentinel://u:pa?ss@s1/t", "an '@' after the sentinels: percent-encode / ? # @"),
    ],
)
def test_malformed_sentinel_urls_are_refused_naming_the_part(
    tmp_path: Path, url: str, problem: str
) -> None:
    found = redis_problems(tmp_path, f'url = "{url}"')
    assert len(found) == 1
    assert found[0].startswith(f"redis.url: {problem}"), found


def test_a_sentinel_login_needs_a_sentinel_url(tmp_path: Path) -> None:
    found = redis_problems(tmp_path, 'url = "redis://h:6379/0"\nsentinel_password = "x"')
    assert found == ["redis: sentinel_username and sentinel_password need a redis+sentinel:// url"]


def test_the_sentinel_password_is_a_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTINEL_PASSWORD", "from-the-env")
    redis = (
        f'url = "redis+sentinel://supervisor:{quote(PASSWORD, safe="")}@s1,s2/trading"\n'
        'sentinel_username = "watcher"\nsentinel_password = "${SENTINEL_PASSWORD}"'
    )
    settings = load_config(write(tmp_path, SPX, "[redis]\n" + redis))
    assert settings.redis.sentinel_password is not None
    assert settings.redis.sentinel_password.get_secret_value() == "from-the-env"
    shown = json.dumps(redacted(settings))
    assert "from-the-env" not in shown and quote(PASSWORD, safe="") not in shown
    assert settings.redis.display_url == f"redis+sentinel://{MASK}@s1,s2/trading"


# Wrong in another part than the password: each message must still not show it.
WRONG = ("s1:x/t", "s1,,s2/t", "/t", "s1", "s1/t/x", "s1:0/t", "[::1/t", "s1/t?x=1", "s1/t#f")


@given(rest=st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=4))
def test_no_password_is_ever_in_a_message_or_the_display_url(rest: str) -> None:
    """Printable ASCII as written, unescaped `/ ? # @ :` too: refused or not, a message names
    the part without the password, and what logs show of the URL masks it. The password
    starts with letters no message has: a short random one could be a word of the message
    itself ("afte" in "after") without anything having leaked."""
    password = f"Kx9Z{rest}"
    for wrong in WRONG:
        url = f"redis+sentinel://user:{password}@{wrong}"
        try:
            check_redis_url(url)
        except ValueError as exc:
            assert password not in str(exc)
        else:  # it loads: then logs and `config show` show it masked
            assert password not in RedisSection.model_validate({"url": url}).display_url


@given(
    sentinels=st.lists(
        st.tuples(
            st.sampled_from(["127.0.0.1", "s1", "sentinel-2.internal", "[fd00::1]"]),
            st.integers(1, 65535),
        ),
        min_size=1,
        max_size=5,
        unique=True,
    ),
    service=st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1).filter(
        lambda s: not set(s) & set("/?#%@")
    ),
    db=st.integers(0, 10_000),
    password=st.text(min_size=1),
)
def test_any_well_formed_sentinel_url_parses_back_to_its_parts(
    sentinels: list[tuple[str, int]], service: str, db: int, password: str
) -> None:
    hosts = ",".join(f"{host}:{port}" for host, port in sentinels)
    url = f"redis+sentinel://u:{quote(password, safe='')}@{hosts}/{service}/{db}"
    parsed = parse_sentinel_url(RedisSection.model_validate({"url": url}).url)
    assert parsed.sentinels == tuple((host.strip("[]"), port) for host, port in sentinels)
    assert (parsed.service, parsed.db, parsed.username, parsed.password) == (
        service,
        db,
        "u",
        password,
    )

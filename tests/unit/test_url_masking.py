"""mask_url / mask_urls: credentials in URLs never reach `config show`, a description or a log."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from supervisor.secrets import MASK, is_secret_parameter, mask_url, mask_urls

SECRET_NAMES = [
    "token",
    "api_key",
    "apikey",
    "apiKey",
    "access_token",
    "accessToken",
    "key",
    "secret",
    "client_secret",
    "password",
    "PASSWORD",
    "pass",
    "pwd",
    "signature",
    "X-Amz-Signature",
    "sig",
]
PLAIN_NAMES = ["query", "db", "x", "monkey", "passage", "signal", "instrument", "tokens_left"]
secrets = st.text(alphabet=string.ascii_letters + string.digits + "-._~%!$'()*+,", min_size=6)


@pytest.mark.parametrize("name", SECRET_NAMES)
def test_credential_parameters_are_recognised(name: str) -> None:
    assert is_secret_parameter(name)


@pytest.mark.parametrize("name", PLAIN_NAMES)
def test_other_parameters_are_not(name: str) -> None:
    assert not is_secret_parameter(name)


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("http://127.0.0.1:8080/health", "http://127.0.0.1:8080/health"),
        (
            "http://user:SECRET456@127.0.0.1:1/x",
            f"http://user:{MASK}@127.0.0.1:1/x",
        ),
        ("redis://:hunter2@127.0.0.1:6379/0", f"redis://:{MASK}@127.0.0.1:6379/0"),
        ("redis://default@127.0.0.1:6379/0", "redis://default@127.0.0.1:6379/0"),
        (
            "https://h/q?query=up&token=SECRET123&x=1",
            f"https://h/q?query=up&token={MASK}&x=1",
        ),
        (
            "https://h/q?API_KEY=abc#access_token=def",
            f"https://h/q?API_KEY={MASK}#access_token={MASK}",
        ),
        ("unix:///run/redis.sock?db=0&password=p", f"unix:///run/redis.sock?db=0&password={MASK}"),
        ("https://h/a%20b?q=a+b&sig=", f"https://h/a%20b?q=a+b&sig={MASK}"),
        ("not a url", "not a url"),
    ],
)
def test_mask_url(url: str, masked: str) -> None:
    assert mask_url(url) == masked


@given(secret=secrets, name=st.sampled_from(SECRET_NAMES))
def test_no_credential_survives_masking(secret: str, name: str) -> None:
    url = f"https://ops:{secret}@venue.example:8443/p?a=1&{name}={secret}&b=2"
    masked = mask_url(url)
    assert secret not in masked
    assert masked.startswith("https://ops:") and "venue.example:8443/p?a=1&" in masked


def test_mask_urls_masks_every_url_inside_text() -> None:
    line = (
        'HTTP Request: GET http://127.0.0.1:5/h?token=SECRET123 "HTTP/1.1 200 OK"; '
        "retrying url='http://user:SECRET456@127.0.0.1:5/'"
    )
    masked = mask_urls(line)
    assert "SECRET" not in masked
    assert masked == (
        f'HTTP Request: GET http://127.0.0.1:5/h?token={MASK} "HTTP/1.1 200 OK"; '
        f"retrying url='http://user:{MASK}@127.0.0.1:5/'"
    )

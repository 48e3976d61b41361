"""Helpers shared by the HTTP watchdogs (margin, http_health, http_value, prometheus_query).

Pure except `fetch`. Reasons built here never contain header values (they hold secrets) and
never the URL's query string (tokens are sometimes passed there): only the path.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

import httpx
from jmespath.parser import ParsedResult
from pydantic import SecretStr

from supervisor.errors import EXPRESSION_FAILURES, ConfigError
from supervisor.sources.http import HttpReply, get


def require_http(client: httpx.AsyncClient | None) -> httpx.AsyncClient:
    """The shared HTTP client; `open_clients` always creates one."""
    if client is None:
        raise ConfigError(["this watchdog kind needs an HTTP client"])
    return client


def url_path(url: str) -> str:
    """The path of `url` ("/" when empty): a subject and a reason without host or secrets."""
    return urlsplit(url).path or "/"


def is_success(reply: HttpReply) -> bool:
    return 200 <= reply.status_code < 300


async def fetch_json(
    http: httpx.AsyncClient, url: str, headers: Mapping[str, SecretStr], timeout_s: float
) -> object:
    """GET `url` and return its JSON document.

    SourceError when there is no answer; ValueError (with a short reason) when the answer
    is not a 2xx or not JSON.
    """
    return document_of(await get(http, url, headers, timeout_s), url)


def document_of(reply: HttpReply, url: str) -> object:
    """The JSON document of a 2xx answer; ValueError with a short reason otherwise. Pure."""
    if not is_success(reply):
        raise ValueError(f"HTTP {reply.status_code} from {url_path(url)}")
    return reply.json()


def search(expression: ParsedResult, document: object) -> object:
    """`expression` applied to `document`; None when absent or not applicable."""
    if not isinstance(document, dict | list):
        return None
    try:
        return expression.search(document)
    except EXPRESSION_FAILURES:
        return None

"""HTTP GETs for health, JSON values and the Prometheus API. Reads; decides nothing.

Every call is bounded twice over. In time: httpx's `timeout` bounds each operation (connect,
each read), so a server sending one byte every half second keeps a call alive for as long as
it likes; the whole call, request and body, runs under one deadline of `timeout_s`. In
size: the body is read in chunks and given up past MAX_BODY_BYTES (at once when the
Content-Length says so), never buffered whole.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass

import anyio
import httpx
from pydantic import SecretStr

from supervisor.errors import SourceError, first_line
from supervisor.quantities import format_duration

MAX_BODY_BYTES = 1 << 20  # a health or account answer larger than 1 MiB is not one


class TooLarge(SourceError):
    """An answer came, but its body is larger than MAX_BODY_BYTES: nothing to judge."""


def client() -> httpx.AsyncClient:
    """One shared client. No I/O here. Proxies from the environment are ignored on purpose:
    safety checks go straight to the service, never through a proxy that may be the fault."""
    return httpx.AsyncClient(follow_redirects=False, trust_env=False)


@dataclass(frozen=True)
class HttpReply:
    status_code: int
    latency_s: float
    body: bytes

    def json(self) -> object:
        """The body as JSON; ValueError with a short reason otherwise."""
        try:
            return json.loads(self.body)
        except (ValueError, RecursionError):
            raise ValueError(f"response is not JSON (HTTP {self.status_code})") from None


async def get(
    http: httpx.AsyncClient, url: str, headers: Mapping[str, SecretStr], timeout_s: float
) -> HttpReply:
    """GET `url`; SourceError when there is no HTTP answer at all (refused, timed out...)."""
    plain = {name: value.get_secret_value() for name, value in headers.items()}
    started = time.perf_counter()
    try:
        with anyio.fail_after(timeout_s):  # the whole call, not each read: see above
            async with http.stream("GET", url, headers=plain, timeout=timeout_s) as response:
                body = await read_bounded(response)
    except (TimeoutError, httpx.TimeoutException):
        raise SourceError(f"http: no answer within {format_duration(timeout_s)}") from None
    except httpx.HTTPError as exc:
        raise SourceError(f"http: {first_line(exc)}") from None
    return HttpReply(response.status_code, time.perf_counter() - started, body)


async def read_bounded(response: httpx.Response) -> bytes:
    """The body, or TooLarge as soon as it is known to exceed MAX_BODY_BYTES."""
    too_large = TooLarge(f"http: response larger than {MAX_BODY_BYTES // (1 << 20)} MiB")
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise too_large  # said so up front: not a byte of it read
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)

"""HTTP GETs for health, JSON values and the Prometheus API. Reads; decides nothing."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass

import httpx
from pydantic import SecretStr

from supervisor.errors import SourceError, first_line
from supervisor.quantities import format_duration

MAX_BODY_BYTES = 1 << 20  # a health or account answer larger than 1 MiB is not one


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
        async with http.stream("GET", url, headers=plain, timeout=timeout_s) as response:
            body = await _read_bounded(response)
    except httpx.TimeoutException:
        raise SourceError(f"http: no answer within {format_duration(timeout_s)}") from None
    except httpx.HTTPError as exc:
        raise SourceError(f"http: {first_line(exc)}") from None
    return HttpReply(response.status_code, time.perf_counter() - started, body)


async def _read_bounded(response: httpx.Response) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise SourceError(f"http: response larger than {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)

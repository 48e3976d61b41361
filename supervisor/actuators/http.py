"""http: call a kill-switch endpoint, retry it safely, then verify that it took.

One `Idempotency-Key` per incident and actuator (f"{incident_id}:{name}") is sent on every
attempt and on every later engage for the same incident, so a server that deduplicates by key
activates once however often we retry. Connect errors, timeouts, 408/425/429 and 5xx are
retried with exponential backoff and full jitter until `retry_for` (measured from the first
attempt) runs out; any other status below 200 or from 300 up fails at once: a redirect is not
followed (trust_env and redirects are off on purpose) and a 4xx says the request itself is wrong
(token, URL, body), which repeating cannot fix — the caller escalates instead of waiting.

Then, when `verify` is configured, a GET whose jmespath `expect` must be truthy (Python
truthiness: null, false, 0, "", [] and {} do not confirm; write explicit comparisons) is
re-checked with the same backoff until it holds or the same deadline passes; then the action is
declared failed (ActuatorError) and the daemon escalates to `on_failure`.

`release` (optional) is the request that releases the switch again on a manual reset (for
the QuantZoo-style ops API: the same endpoint with `{"enabled": true}`): sent by
`trading-supervisor reset` with the same retries for at most RELEASE_RETRY_FOR_S, then, with
`verify`, re-checked until `expect` no longer holds. Without it, the operator releases the
switch at the venue, before or after the reset.

Whether an engage changed anything is the venue's truth: engaged before the action (as the
last read of `verify`, or this process's own engagement since the last reset, said) or not.

Body templates: every string in `json` (values, recursively; keys are literal) may hold
`{reason}`, `{watchdog}`, `{instance_id}`, `{incident_id}`, `{severity}`, `{fencing_token}`
(empty with [ha] off). Substitution is one regex pass over the template, so text inside a
reason ("{watchdog}", "}{", "{0}") is inserted literally and can never raise. Unknown
`{name}`s are refused when the config is loaded.
The body is serialised with ensure_ascii, so any reason (even a lone surrogate) encodes.
Header values are secrets: they are sent, never logged or put into a message.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import anyio
import httpx
import jmespath
from pydantic import Field, SecretStr, model_validator

from supervisor.actuators.base import ActionContext, Actuator, ActuatorKind, Outcome
from supervisor.config.actuator_base import ActuatorBase, JsonBody, check_placeholders
from supervisor.config.types import (
    Duration,
    HeaderName,
    Headers,
    HttpUrl,
    JmesPath,
    Strict,
    Timeout,
)
from supervisor.declarations import Need
from supervisor.errors import EXPRESSION_FAILURES, ActuatorError, SourceError, first_line
from supervisor.model import Decision, TradingState
from supervisor.quantities import format_duration
from supervisor.secrets import mask_url
from supervisor.sources import http as http_source

PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
RETRYABLE_STATUSES = frozenset({408, 425, 429})
FENCING_HEADER = "X-Fencing-Token"  # sent with [ha] on: the leader term that ordered it
INITIAL_BACKOFF_S = 0.1
MAX_BACKOFF_S = 5.0
RELEASE_RETRY_FOR_S = 10.0  # an operator waits for `reset`: a release retries this long at most


def render(template: Any, values: Mapping[str, str]) -> Any:
    """`template` with every known `{name}` in its strings replaced; never raises."""
    if isinstance(template, str):
        return PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)
    if isinstance(template, dict):
        return {key: render(value, values) for key, value in template.items()}
    if isinstance(template, list):
        return [render(item, values) for item in template]
    return template


def decision_values(decision: Decision, context: ActionContext) -> dict[str, str]:
    return {
        "reason": decision.reason,
        "watchdog": decision.source,
        "instance_id": context.instance_id,
        "incident_id": decision.incident_id,
        "severity": decision.severity.name,
        "fencing_token": "" if decision.fencing_token is None else str(decision.fencing_token),
    }


def encode_json(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def plain_headers(headers: Mapping[str, SecretStr]) -> dict[str, str]:
    return {name: value.get_secret_value() for name, value in headers.items()}


def retryable(status: int) -> bool:
    return status >= 500 or status in RETRYABLE_STATUSES


def backoff_s(attempt: int) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(cap, base * 2^(attempt-1))]."""
    ceiling = min(MAX_BACKOFF_S, INITIAL_BACKOFF_S * 2 ** min(attempt - 1, 16))
    return random.uniform(0.0, ceiling)  # noqa: S311 - jitter, not cryptography


class VerifyConfig(Strict):
    url: HttpUrl
    expect: JmesPath
    headers: Headers = {}


class ReleaseConfig(Strict):
    """The request that releases the switch on a manual reset."""

    method: Literal["POST", "PUT", "PATCH", "DELETE", "GET"] = "POST"
    url: HttpUrl | None = None  # None: the action's own url
    headers: Headers | None = None  # None: the action's own headers (its token)
    json_body: JsonBody | None = Field(None, alias="json")

    @model_validator(mode="after")
    def _known_placeholders(self) -> ReleaseConfig:
        check_placeholders(self.json_body, ("instance_id",))
        return self


class HttpActuatorConfig(ActuatorBase):
    kind: Literal["http"]
    method: Literal["POST", "PUT", "PATCH", "DELETE", "GET"] = "POST"
    url: HttpUrl
    headers: Headers = {}
    json_body: JsonBody | None = Field(None, alias="json")
    idempotency_header: HeaderName | None = "Idempotency-Key"
    verify: VerifyConfig | None = None
    release: ReleaseConfig | None = None
    timeout_s: Timeout = Field(2.0, alias="timeout")
    retry_for_s: Duration = Field(60.0, alias="retry_for")

    @model_validator(mode="after")
    def _known_placeholders(self) -> HttpActuatorConfig:
        check_placeholders(
            self.json_body,
            ("reason", "watchdog", "instance_id", "incident_id", "severity", "fencing_token"),
        )
        return self


@dataclass
class Deadline:
    """`retry_for` measured from the first attempt, on the monotonic clock."""

    at: float
    span_s: float = 0.0  # how long it was set for, for messages

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(time.monotonic() + seconds, seconds)

    def remaining(self) -> float:
        return max(0.0, self.at - time.monotonic())

    def expired(self) -> bool:
        return self.remaining() <= 0.0

    async def sleep(self, attempt: int) -> None:
        await asyncio.sleep(min(backoff_s(attempt), self.remaining()))


class Verifier:
    """A GET whose jmespath expectation says whether the action took."""

    def __init__(self, config: VerifyConfig, timeout_s: float) -> None:
        self.config = config
        self.timeout_s = timeout_s
        self.expression = jmespath.compile(config.expect)

    @property
    def where(self) -> str:
        return f"GET {mask_url(self.config.url)}"

    async def probe(self, client: httpx.AsyncClient) -> bool:
        """True or False; ActuatorError when there is no usable answer (down, non-2xx, not JSON)."""
        try:
            reply = await http_source.get(
                client, self.config.url, self.config.headers, self.timeout_s
            )
        except SourceError as exc:
            raise ActuatorError(f"verify {self.where}: {exc}") from None
        if not 200 <= reply.status_code < 300:
            raise ActuatorError(f"verify {self.where}: HTTP {reply.status_code}")
        try:
            document = reply.json()
        except ValueError as exc:
            raise ActuatorError(f"verify {self.where}: {exc}") from None
        return self.holds(document)

    def holds(self, document: object) -> bool:
        """Whether `expect` is truthy on the answer; ActuatorError when it cannot say."""
        try:
            return bool(self.expression.search(document))
        except EXPRESSION_FAILURES as exc:  # the answer is not what `expect` was written for
            raise ActuatorError(
                f"verify {self.where}: {self.config.expect!r} failed on the answer:"
                f" {type(exc).__name__}"
            ) from None

    async def until(self, client: httpx.AsyncClient, deadline: Deadline, name: str) -> int:
        """Re-check until it holds (returns the number of checks) or the deadline passes."""
        checks = 0
        while True:
            checks += 1
            try:
                if await self.probe(client):
                    return checks
                why = f"{self.config.expect!r} is not true"
            except ActuatorError as exc:
                why = str(exc)
            if deadline.expired():
                raise ActuatorError(
                    f"{name}: action sent but not confirmed after {checks} check(s): {why}"
                )
            await deadline.sleep(checks)


Trace = Callable[[str, dict[str, Any]], Awaitable[None]]


def sent_hook(sent: Callable[[], None]) -> Trace:
    """An httpcore trace callback that calls `sent` once the request's body is written."""

    async def trace(event: str, _info: dict[str, Any]) -> None:
        if event.endswith("send_request_body.complete"):
            sent()

    return trace


class HttpActuator(Actuator):
    config: HttpActuatorConfig

    def __init__(
        self, name: str, config: HttpActuatorConfig, client: httpx.AsyncClient | None
    ) -> None:
        super().__init__(name, TradingState.from_level(config.level))
        self.config = config
        self.client = client  # None only when built for `config validate` (no I/O)
        self.verifier = Verifier(config.verify, config.timeout_s) if config.verify else None
        # The venue's state as last known: engaged by this process since the last reset, or
        # read from `verify`; None: not known. Decides whether an engage changed anything.
        self._engaged: bool | None = None

    @property
    def max_duration_s(self) -> float:
        """How long one engage() may take: retry_for, plus one request and one verify GET
        started just before the deadline. The daemon should not cut it off earlier."""
        return self.config.retry_for_s + 2 * self.config.timeout_s + 1.0

    @property
    def readable(self) -> bool:
        return self.verifier is not None

    @property
    def relatch_on_release(self) -> bool:
        return False  # the venue's switch: its operators release it there (runbook 002)

    def note_reset(self) -> None:
        if self.verifier is None:
            self._engaged = False  # nothing to read: the reset is the only news of a release

    @property
    def read_timeout_s(self) -> float:
        return self.config.timeout_s

    @property
    def where(self) -> str:
        return f"{self.config.method} {mask_url(self.config.url)}"

    def idempotency_key(self, decision: Decision) -> str:
        """One key per incident and actuator, and per leader term with [ha] on: a server
        that keeps the highest token it has seen can refuse a deposed leader's late order."""
        key = f"{decision.incident_id}:{self.name}"
        return key if decision.fencing_token is None else f"{key}:{decision.fencing_token}"

    def request_headers(self, decision: Decision) -> dict[str, str]:
        headers = plain_headers(self.config.headers)
        if self.config.idempotency_header:
            headers[self.config.idempotency_header] = self.idempotency_key(decision)
        if decision.fencing_token is not None:
            headers[FENCING_HEADER] = str(decision.fencing_token)
        if self.config.json_body is not None:
            headers.setdefault("Content-Type", "application/json")
        return headers

    def body(self, decision: Decision, context: ActionContext) -> bytes | None:
        if self.config.json_body is None:
            return None
        return encode_json(render(self.config.json_body, decision_values(decision, context)))

    async def engage(self, decision: Decision, context: ActionContext) -> Outcome:
        client = self._client()
        engaged_before = self._engaged is True
        started = time.monotonic()
        deadline = Deadline.after(self.config.retry_for_s)
        request = (self.config.method, self.config.url)
        status, attempts = await self._send_until(
            client,
            request,
            self.request_headers(decision),
            self.body(decision, context),
            deadline,
            sent_hook(context.sent),
            context.attempt_failed,
        )
        detail = f"{self.where} -> HTTP {status} after {attempts} attempt(s)"
        if self.verifier is not None:
            checks = await self.verifier.until(client, deadline, self.name)
            detail += f"; verified after {checks} check(s)"
        else:
            detail += "; not verified (no verify configured)"
        detail += f"; took {format_duration(time.monotonic() - started)}"
        self._engaged = True
        return Outcome(not engaged_before, detail, status)

    async def disengage(self, context: ActionContext) -> Outcome:
        """Manual reset: send `release`, then (with `verify`) wait until it reads released."""
        release = self.config.release
        if release is None:
            return await super().disengage(context)
        client = self._client()
        deadline = Deadline.after(min(self.config.retry_for_s, RELEASE_RETRY_FOR_S))
        url = release.url or self.config.url
        headers = plain_headers(self.config.headers if release.headers is None else release.headers)
        if self.config.idempotency_header:  # one key per reset, the same on every retry
            headers[self.config.idempotency_header] = f"release-{uuid.uuid4().hex}:{self.name}"
        body = None
        if release.json_body is not None:
            body = encode_json(render(release.json_body, {"instance_id": context.instance_id}))
            headers.setdefault("Content-Type", "application/json")
        trace = sent_hook(context.sent)
        status, attempts = await self._send_until(
            client, (release.method, url), headers, body, deadline, trace, context.attempt_failed
        )
        detail = f"{release.method} {mask_url(url)} -> HTTP {status} after {attempts} attempt(s)"
        if self.verifier is not None:
            checks = await self._until_released(client, deadline)
            detail += f"; released at the venue after {checks} check(s)"
        self._engaged = False
        return Outcome(True, detail, status)

    async def _until_released(self, client: httpx.AsyncClient, deadline: Deadline) -> int:
        assert self.verifier is not None, "called only with verify configured"
        checks = 0
        while True:
            checks += 1
            try:
                if not await self.verifier.probe(client):
                    return checks
                why = f"{self.verifier.config.expect!r} still holds"
            except ActuatorError as exc:
                why = str(exc)
            if deadline.expired():
                raise ActuatorError(
                    f"{self.name}: release sent but the venue still reads engaged after"
                    f" {checks} check(s): {why}"
                )
            await deadline.sleep(checks)

    async def _send_until(
        self,
        client: httpx.AsyncClient,
        request: tuple[str, str],
        headers: dict[str, str],
        body: bytes | None,
        deadline: Deadline,
        trace: Trace,
        attempt_failed: Callable[[str], None],
    ) -> tuple[int, int]:
        """Send `request` (method, url) until a 2xx: (status, attempts). Raises ActuatorError
        on a final answer or when the deadline passes (the last failure named); says each
        failed attempt to `attempt_failed` as it happens."""
        where = f"{request[0]} {mask_url(request[1])}"
        attempt = 0
        while True:
            attempt += 1
            status, failure = await self._attempt(client, request, headers, body, trace)
            if status is not None and 200 <= status < 300:
                return status, attempt
            if status is not None and not retryable(status):
                raise ActuatorError(
                    f"{self.name}: {where} answered HTTP {status} on attempt {attempt}:"
                    " not retried (the request itself is refused; repeating cannot fix it)"
                )
            attempt_failed(f"{where}: attempt {attempt}: {failure}")
            if deadline.expired():
                raise ActuatorError(
                    f"{self.name}: {where} failed {attempt} attempt(s) within"
                    f" {format_duration(deadline.span_s)}; last: {failure}"
                )
            await deadline.sleep(attempt)

    async def _attempt(
        self,
        client: httpx.AsyncClient,
        request: tuple[str, str],
        headers: dict[str, str],
        body: bytes | None,
        trace: Trace,
    ) -> tuple[int | None, str]:
        """One request: (status, description); status None when there was no HTTP answer.

        Only the status line and headers are read (the body never is), all of it within one
        deadline of `timeout`: httpx's own bounds each read, and a server dripping its
        headers a byte at a time would keep the attempt, and the retries behind it, waiting.
        """
        try:
            with anyio.fail_after(self.config.timeout_s):
                async with client.stream(
                    request[0],
                    request[1],
                    headers=headers,
                    content=body,
                    timeout=self.config.timeout_s,
                    extensions={"trace": trace},
                ) as response:
                    return response.status_code, f"HTTP {response.status_code}"
        except (TimeoutError, httpx.TimeoutException):
            return None, f"no answer within {format_duration(self.config.timeout_s)}"
        except httpx.HTTPError as exc:
            return None, first_line(exc)

    async def is_engaged(self) -> bool:
        """With `verify`: what the venue says (raises when it cannot say). Without: only
        whether this process engaged it (an unverifiable endpoint has no readable state)."""
        if self.verifier is None:
            return self._engaged is True
        self._engaged = await self.verifier.probe(self._client())
        return self._engaged

    def _client(self) -> httpx.AsyncClient:
        if self.client is None:
            raise ActuatorError(f"{self.name}: no HTTP client (built without clients)")
        return self.client


KIND = ActuatorKind(
    config=HttpActuatorConfig,
    build=lambda name, config, clients: HttpActuator(name, config, clients.http),
    needs=frozenset({Need.HTTP}),
)

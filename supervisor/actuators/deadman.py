"""deadman: keep a venue's cancel-on-disconnect timer armed while trading is ACTIVE.

Venues offer "cancel all my orders unless you call me again within N seconds" (Kraken
`cancelAllOrdersAfter`, Deribit `enable_cancel_on_disconnect`). The daemon calls heartbeat()
once per housekeeping cycle while the trading state is ACTIVE; if the supervisor dies, hangs or
loses the network, the calls stop and the venue cancels on its own. Once the state is more
restrictive than ACTIVE the daemon stops calling, which lets the venue cancel too: that is
toward safety.

A deadman is not an Actuator (it is never engaged by a decision and has no level): it is
configured under `[actuators.NAME]` with kind "deadman" and built by build_deadmen(). One
heartbeat is one request, never retried: the next cycle is the retry, and a late beat is
worse than a missed one. Failures raise ActuatorError (the daemon logs and counts them).

Body template strings may hold `{instance_id}` and `{now}` (epoch seconds, as given).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Literal

import anyio
import httpx
from pydantic import Field, model_validator

from supervisor.actuators.base import DeadmanKind, Outcome
from supervisor.actuators.http import encode_json, plain_headers, render
from supervisor.config.actuator_base import ActuatorBase, JsonBody, check_placeholders
from supervisor.config.types import Headers, HttpUrl, Strict, Timeout
from supervisor.declarations import Need
from supervisor.errors import ActuatorError, first_line
from supervisor.quantities import format_duration
from supervisor.secrets import mask_url

if TYPE_CHECKING:  # an annotation only: a kind that reads no PostgreSQL loads no asyncpg
    from supervisor.sources.clients import Clients


class DeadmanConfig(Strict):
    kind: Literal["deadman"]
    method: Literal["POST", "PUT", "GET"] = "POST"
    url: HttpUrl
    headers: Headers = {}
    json_body: JsonBody | None = Field(None, alias="json")
    timeout_s: Timeout = Field(1.0, alias="timeout")

    @model_validator(mode="after")
    def _known_placeholders(self) -> DeadmanConfig:
        check_placeholders(self.json_body, ("instance_id", "now"))
        return self


class Deadman:
    def __init__(
        self,
        name: str,
        config: DeadmanConfig,
        client: httpx.AsyncClient | None,
        instance_id: str,
    ) -> None:
        self.name = name
        self.config = config
        self.client = client
        self.instance_id = instance_id
        self.beats = 0  # successful heartbeats since start
        self.failures = 0  # consecutive failed heartbeats
        self.last_ok: float | None = None  # `now` of the last successful heartbeat

    @property
    def kind(self) -> str:
        return self.config.kind

    @property
    def where(self) -> str:
        return f"{self.config.method} {mask_url(self.config.url)}"

    async def heartbeat(self, now: float) -> Outcome:
        """One call to the venue. Outcome.changed is True when the timer was (re-)armed after
        a start or a failure. Raises ActuatorError when the venue did not accept it."""
        try:
            status = await self._send(now)
        except ActuatorError:
            self.failures += 1
            raise
        changed = self.beats == 0 or self.failures > 0
        self.beats += 1
        self.failures = 0
        self.last_ok = now
        return Outcome(changed, f"{self.where} -> HTTP {status}", status)

    async def _send(self, now: float) -> int:
        if self.client is None:
            raise ActuatorError(f"deadman {self.name}: no HTTP client (built without clients)")
        headers = plain_headers(self.config.headers)
        body = None
        if self.config.json_body is not None:
            values = {"instance_id": self.instance_id, "now": f"{now:.3f}"}
            body = encode_json(render(self.config.json_body, values))
            headers.setdefault("Content-Type", "application/json")
        try:  # one deadline for the whole call (httpx's bounds each read); the body is not read
            with anyio.fail_after(self.config.timeout_s):
                async with self.client.stream(
                    self.config.method,
                    self.config.url,
                    headers=headers,
                    content=body,
                    timeout=self.config.timeout_s,
                ) as response:
                    status = response.status_code
        except (TimeoutError, httpx.TimeoutException):
            raise ActuatorError(
                f"deadman {self.name}: {self.where}: no answer within"
                f" {format_duration(self.config.timeout_s)}"
            ) from None
        except httpx.HTTPError as exc:
            raise ActuatorError(f"deadman {self.name}: {self.where}: {first_line(exc)}") from None
        if not 200 <= status < 300:
            raise ActuatorError(f"deadman {self.name}: {self.where} answered HTTP {status}")
        return status


def build_deadmen(
    actuators: Mapping[str, ActuatorBase | DeadmanConfig], instance_id: str, clients: Clients
) -> dict[str, Deadman]:
    """Every `kind = "deadman"` entry of [actuators], by name. No I/O."""
    return {
        name: Deadman(name, config, clients.http, instance_id)
        for name, config in actuators.items()
        if isinstance(config, DeadmanConfig)
    }


KIND = DeadmanKind(config=DeadmanConfig, needs=frozenset({Need.HTTP}))

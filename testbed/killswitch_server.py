"""A real, programmable HTTP kill-switch server on 127.0.0.1, for tests and demos.

Shaped like the QuantZoo safety API: `POST /kill-switch/activate` (Bearer token when one is
set) and `GET /status` -> {"kill_switch_active": true|false, "trading_enabled": ...}. The
switch has real engaged/released state: the same endpoint with `{"enabled": true}` releases it
(runbook 002: resume trading), as does `release()`, an operator releasing it at the venue.
Like a well-behaved server it deduplicates by `Idempotency-Key`: a key that already
activated gets the same 200 again without a second activation. Programmable: fail the first
N activation requests with 500, never confirm on /status, refuse with a fixed status, hold
the first N activation requests (or /status reads) for a while before handling them (a venue
that hangs). Any other path answers 200 and is recorded
(a venue's cancel-on-disconnect endpoint for deadman tests). stop() takes it down (the port
then refuses connections, held requests are dropped unhandled); every request is recorded in
order once answered, and every activation's Idempotency-Key as it arrives (`received_keys`).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ACTIVATE_PATH = "/kill-switch/activate"
STATUS_PATH = "/status"


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int
    at: float = 0.0  # epoch seconds when the request line arrived (latency benchmarks)

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Behaviour:
    fail_first: int = 0  # the first N activation requests answer `fail_status`
    fail_status: int = 500
    never_confirm: bool = False  # /status never reports the switch active
    token: str | None = None  # when set, activation needs "Authorization: Bearer <token>"
    idempotency_header: str = "Idempotency-Key"
    hold_first: int = 0  # the first N activation requests wait `hold_s` before being handled
    hold_s: float = 0.0
    keep_alive: bool = False  # HTTP/1.1 persistent connections, as a production endpoint has
    hold_status_first: int = 0  # the first N /status reads after an activation wait...
    hold_status_s: float = 0.0  # ...this long, then answer what the state is by then


@dataclass
class State:
    requests: list[Recorded] = field(default_factory=list)
    activations: Counter[str] = field(default_factory=Counter)  # key -> activations (max 1)
    attempts: Counter[str] = field(default_factory=Counter)  # key -> activation requests
    active: bool = False
    failed: int = 0
    held: int = 0
    received_keys: list[str] = field(default_factory=list)  # activation keys, as they arrive
    releases: int = 0  # release requests ({"enabled": true}) and operator releases
    status_held: int = 0


class KillSwitchServer:
    def __init__(self, behaviour: Behaviour | None = None) -> None:
        self.behaviour = behaviour or Behaviour()
        self.state = State()
        self.lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # --- lifecycle -----------------------------------------------------------------------

    def start(self) -> KillSwitchServer:
        """Listen (again: after stop(), on the same port)."""
        self._stopping.clear()
        server = QuietServer(("127.0.0.1", self.port), _handler_for(self))
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Down: the listening socket is closed; connections are refused from now on."""
        self._stopping.set()  # held requests are dropped, not handled
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> KillSwitchServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- addresses and observations -------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def activate_url(self) -> str:
        return self.base_url + ACTIVATE_PATH

    @property
    def status_url(self) -> str:
        return self.base_url + STATUS_PATH

    def requests(self, path: str | None = None) -> list[Recorded]:
        with self.lock:
            return [r for r in self.state.requests if path is None or r.path == path]

    def activation_requests(self) -> list[Recorded]:
        return self.requests(ACTIVATE_PATH)

    @property
    def activations(self) -> int:
        """Distinct keys that activated the switch (a repeated key never activates twice)."""
        with self.lock:
            return sum(self.state.activations.values())

    @property
    def received_keys(self) -> list[str]:
        """The Idempotency-Key of every activation request, in order of arrival."""
        with self.lock:
            return list(self.state.received_keys)

    @property
    def active(self) -> bool:
        with self.lock:
            return self.state.active

    @property
    def releases(self) -> int:
        with self.lock:
            return self.state.releases

    def release(self) -> None:
        """An operator releases the switch at the venue (trading enabled again)."""
        with self.lock:
            self.state.active = False
            self.state.releases += 1

    def release_request(self, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """`{"enabled": true}` on the activation endpoint: release (same token rule)."""
        token = self.behaviour.token
        if token is not None and headers.get("authorization") != f"Bearer {token}":
            return 401, {"error": "unauthorized"}
        self.release()
        return 200, {"kill_switch_active": False}

    # --- behaviour (called from the handler threads) ---------------------------------------

    def activate(self, headers: dict[str, str]) -> tuple[int, dict[str, Any]] | None:
        """The answer to one activation request; None when it was held and the server is
        stopping (the request is dropped unhandled, the connection closed)."""
        behaviour = self.behaviour
        key = headers.get(behaviour.idempotency_header.lower(), "")
        with self.lock:
            self.state.received_keys.append(key)
            hold = self.state.held < behaviour.hold_first
            self.state.held += hold
        if hold and self._stopping.wait(behaviour.hold_s):
            return None
        with self.lock:
            self.state.attempts[key] += 1
            if behaviour.token is not None and headers.get("authorization") != (
                f"Bearer {behaviour.token}"
            ):
                return 401, {"error": "unauthorized"}
            if self.state.failed < behaviour.fail_first:
                self.state.failed += 1
                return behaviour.fail_status, {"error": "injected failure"}
            replay = key != "" and self.state.activations[key] > 0
            if not replay:
                self.state.activations[key] += 1
                self.state.active = True
            return 200, {"kill_switch_active": True, "replayed": replay}

    def status(self) -> tuple[int, dict[str, Any]]:
        with self.lock:
            hold = self.state.active and self.state.status_held < self.behaviour.hold_status_first
            self.state.status_held += hold
        if hold:
            self._stopping.wait(self.behaviour.hold_status_s)
        with self.lock:
            active = self.state.active and not self.behaviour.never_confirm
            return 200, {"kill_switch_active": active, "trading_enabled": not self.state.active}

    def record(self, entry: Recorded) -> None:
        with self.lock:
            self.state.requests.append(entry)


def enables(body: bytes) -> bool:
    """A body that asks to enable trading again: `{"enabled": true}`."""
    try:
        document = json.loads(body or b"null")
    except ValueError:
        return False
    return isinstance(document, dict) and document.get("enabled") is True


class QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away mid-answer (a daemon SIGKILLed or stopped, a kept-alive
        connection dropped) is not news."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _handler_for(owner: KillSwitchServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "killswitch-test/1"
        protocol_version = "HTTP/1.1" if owner.behaviour.keep_alive else "HTTP/1.0"

        def do_GET(self) -> None:
            at = time.time()
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, document = owner.status() if self.path == STATUS_PATH else (200, {"ok": True})
            owner.record(Recorded("GET", self.path, headers, b"", status, at))
            self._answer(status, document)

        def do_POST(self) -> None:
            at = time.time()
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {k.lower(): v for k, v in self.headers.items()}
            if self.path == ACTIVATE_PATH and self.command == "POST" and enables(body):
                status, document = owner.release_request(headers)
            elif self.path == ACTIVATE_PATH and self.command == "POST":
                answer = owner.activate(headers)
                if answer is None:
                    self.close_connection = True
                    return
                status, document = answer
            else:
                status, document = 200, {"ok": True}
            owner.record(Recorded(self.command, self.path, headers, body, status, at))
            self._answer(status, document)

        do_PUT = do_POST
        do_PATCH = do_POST
        do_DELETE = do_POST

        def _answer(self, status: int, document: dict[str, Any]) -> None:
            payload = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: tests read `requests`, not stderr."""

    return Handler

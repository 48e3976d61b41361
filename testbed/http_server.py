"""A real HTTP server on 127.0.0.1 for tests: programmable answers per path.

`ThreadingHTTPServer` on a free port in a daemon thread. Each path answers what it was told
(status, a JSON document or raw bytes, extra headers, a delay); everything else is 404.
Every request is recorded (path, query, headers) and counted. `close()` stops it: delays are
cut short, the serving thread is joined with a bound, so a test never hangs on it.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Answer:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


@dataclass(frozen=True)
class Seen:
    """One request as the server saw it."""

    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]


class HttpServer:
    def __init__(self) -> None:
        self._answers: dict[str, Answer] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.requests: list[Seen] = []
        self.counts: Counter[str] = Counter()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def __enter__(self) -> HttpServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def answer_json(
        self, path: str, document: Any, status: int = 200, delay_s: float = 0.0
    ) -> None:
        body = json.dumps(document).encode()
        headers = {"Content-Type": "application/json"}
        self.answer(path, Answer(status, body, headers, delay_s))

    def answer_raw(self, path: str, body: bytes, status: int = 200, delay_s: float = 0.0) -> None:
        self.answer(path, Answer(status, body, {"Content-Type": "text/plain"}, delay_s))

    def answer(self, path: str, answer: Answer) -> None:
        with self._lock:
            self._answers[path] = answer

    def seen(self, path: str) -> list[Seen]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def close(self) -> None:
        self._stopping.set()  # cut any delayed answer short
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _record(self, seen: Seen) -> Answer:
        with self._lock:
            self.requests.append(seen)
            self.counts[seen.path] += 1
            return self._answers.get(seen.path, Answer(404, b'{"error": "not found"}'))

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                seen = Seen(parts.path, parse_qs(parts.query), dict(self.headers.items()))
                answer = server._record(seen)
                if answer.delay_s and server._stopping.wait(answer.delay_s):
                    return
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: pytest shows failures, not access logs

        return Handler

"""The feeds' ages for Prometheus: a tiny exporter (stdlib http.server on 127.0.0.1, a free
port) that reads the ticks from Redis at every scrape, as a real exporter would, and answers
`feed_age_seconds{feed="NAME"} AGE` for each; a feed whose key is missing is left out."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

from redis import Redis

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class AgeExporter:
    def __init__(self, redis_url: str, keys: dict[str, str]) -> None:
        """`keys`: feed name -> the Redis key holding its last tick (epoch ms)."""
        self.redis = Redis.from_url(redis_url)
        self.keys = dict(keys)
        self.scrapes = 0
        self._server = HTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    def exposition(self) -> bytes:
        names = list(self.keys)
        values = self.redis.mget([self.keys[name] for name in names])
        now_ms = time.time() * 1000
        lines = ["# TYPE feed_age_seconds gauge"]
        for name, value in zip(names, values, strict=True):
            if value is not None:
                lines.append(f'feed_age_seconds{{feed="{name}"}} {(now_ms - int(value)) / 1000}')
        self.scrapes += 1
        return ("\n".join(lines) + "\n").encode()

    def __enter__(self) -> AgeExporter:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        self.redis.close()


def _handler_for(exporter: AgeExporter) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = exporter.exposition()
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: a scrape a second is not news."""

    return Handler

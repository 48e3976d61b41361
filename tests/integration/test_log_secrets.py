"""URL credentials never reach the journal: real HTTP watchdogs against a real HTTP server,
logged through setup_logging's handler at DEBUG."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import httpx
import pytest

from supervisor.model import Status
from supervisor.publish.logging import setup_logging
from supervisor.watchdogs.base import evaluate
from supervisor.watchdogs.http_health import HttpHealth, HttpHealthConfig
from testbed.http_server import HttpServer

pytestmark = pytest.mark.anyio

LIBRARIES = ("httpx", "httpcore", "apscheduler")


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """setup_logging changes the root logger and library levels: put them back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    levels = {name: logging.getLogger(name).level for name in LIBRARIES}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, library_level in levels.items():
        logging.getLogger(name).setLevel(library_level)


def watchdogs(server: HttpServer, client: httpx.AsyncClient) -> list[HttpHealth]:
    server.answer_raw("/health", b"fine")
    server.answer_raw("/basic", b"fine")
    urls = [
        server.url("/health?token=SECRET123"),
        f"http://user:SECRET456@127.0.0.1:{server.port}/basic",
    ]
    return [
        HttpHealth(
            HttpHealthConfig.model_validate(
                {"name": f"h{i}", "kind": "http_health", "url": url, "timeout": "1s"}
            ),
            client,
        )
        for i, url in enumerate(urls)
    ]


async def check_both(server: HttpServer, client: httpx.AsyncClient) -> None:
    for watchdog in watchdogs(server, client):
        [verdict] = await evaluate(watchdog, None, time.time())
        assert verdict.status is Status.OK


@pytest.mark.usefixtures("restore_logging")
async def test_no_url_credential_reaches_the_log_at_debug(
    http_server: HttpServer, http_client: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    setup_logging("DEBUG")
    logging.getLogger("supervisor.test").debug(
        "checking %s", http_server.url("/x?api_key=SECRET789")
    )
    await check_both(http_server, http_client)
    logged = capsys.readouterr().err
    assert "checking http://127.0.0.1" in logged  # the handler did write at DEBUG
    assert "api_key=**********" in logged
    for secret in ("SECRET123", "SECRET456", "SECRET789"):
        assert secret not in logged
    assert http_server.seen("/health")[0].query == {"token": ["SECRET123"]}  # it was sent


@pytest.mark.usefixtures("restore_logging")
async def test_a_librarys_own_request_lines_are_masked(
    http_server: HttpServer, http_client: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    setup_logging("DEBUG")
    for library in ("httpx", "httpcore"):  # as verbose as they can be
        logging.getLogger(library).setLevel(logging.DEBUG)
    await check_both(http_server, http_client)
    logged = capsys.readouterr().err
    assert "HTTP Request: GET http://127.0.0.1" in logged  # httpx's own line is there
    assert "token=**********" in logged
    assert "SECRET123" not in logged and "SECRET456" not in logged


@pytest.mark.usefixtures("restore_logging")
def test_setup_logging_quiets_the_http_libraries() -> None:
    setup_logging("DEBUG")
    for library in LIBRARIES:
        assert not logging.getLogger(library).isEnabledFor(logging.INFO)

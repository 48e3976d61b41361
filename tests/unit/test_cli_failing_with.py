"""failing_with: which failures end a CLI command with one line, and which keep their traceback."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from supervisor.cli import CommandFailed, failing_with
from supervisor.config.loading import load_config
from supervisor.config.settings import Settings
from supervisor.manual import Refused

CONFIG = """
[supervisor]
instance_id = "cli-test"

[redis]
url = "redis://:hunter2@127.0.0.1:1/0"

[postgres]
dsn = "postgresql://audit:pg-secret@127.0.0.1:2/audit?sslpassword=x"

[[watchdogs]]
name = "spx"
kind = "tick_freshness"
key = "ticks:SPX"
instruments = ["SPX"]
breach = "15s"
"""


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    path = tmp_path / "supervisor.toml"
    path.write_text(CONFIG, encoding="utf-8")
    return load_config(path)


@pytest.mark.parametrize(
    ("exc", "said"),
    [
        (
            RedisConnectionError("Error 111 connecting to 127.0.0.1:1."),
            "redis redis://**********@127.0.0.1:1/0: ConnectionError: Error 111 connecting to"
            " 127.0.0.1:1.",
        ),
        (
            asyncpg.InterfaceError("connection is closed"),
            "postgres postgresql://**********@127.0.0.1:2/audit?sslpassword=**********:"
            " InterfaceError: connection is closed",
        ),
        (
            PermissionError(13, "Permission denied", "/var/lib/ts/engaged.json"),
            "/var/lib/ts/engaged.json: PermissionError: [Errno 13] Permission denied:"
            " '/var/lib/ts/engaged.json'",
        ),
        (TimeoutError(), "I/O: TimeoutError"),
    ],
)
def test_an_io_failure_is_one_line_naming_what_failed(
    settings: Settings, exc: Exception, said: str
) -> None:
    with pytest.raises(CommandFailed) as caught, failing_with(settings, 3):
        raise exc
    assert str(caught.value) == said
    assert caught.value.exit_code == 3


@pytest.mark.parametrize(
    "exc",
    [
        Refused("refused: at most one reset a minute"),  # an OSError, but ours
        BrokenPipeError(32, "Broken pipe"),  # stdout closed: main() handles it
        ValueError("a bug"),  # keeps its traceback
        KeyError("a bug"),
    ],
)
def test_other_exceptions_pass_through(settings: Settings, exc: Exception) -> None:
    with pytest.raises(type(exc)), failing_with(settings, 1):
        raise exc

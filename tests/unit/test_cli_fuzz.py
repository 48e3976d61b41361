"""`trading-supervisor` with arbitrary arguments: it exits with a code, never a traceback.

argv is built from the real commands and options mixed with arbitrary text, against a temp
config whose Redis is a closed port (127.0.0.1:1, refused at once) and with no PostgreSQL,
so `check`, `status`, `trip`, `kill`, `reset` and `events` all meet a store that is down.
Never generated, because they do not end by themselves: `run` and `events --follow`. The
config search is pinned to the temp directory, so no argument can reach a real config (and
through it a real Redis).
"""

from __future__ import annotations

import contextlib
import io
import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from supervisor import cli
from supervisor.constants import EX_CONFIG
from tests.unit.test_nagios import parse as parse_plugin_line

CONFIG = """
[supervisor]
instance_id = "fuzz"
namespace = "fuzz"
state_dir = "{state_dir}"

[redis]
url = "redis://127.0.0.1:1/0"
timeout = "50ms"

[metrics]
enabled = false

[actuators.breaker]
kind = "redis_breaker"

[actuators.kill]
kind = "redis_flag"
level = "halted"
key = "fuzz:kill"

[actuators.flatten]
kind = "command"
level = "flatten"
argv = ["true"]

[[watchdogs]]
name = "w"
kind = "redis_value"
key = "k"
breach = 1
timeout = "50ms"
"""
REASON = "a reason long enough to pass the twenty-character rule"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A temp directory holding the config, made the cwd and the only config found."""
    directory = tmp_path_factory.mktemp("cli")
    config = directory / "supervisor.toml"
    config.write_text(CONFIG.format(state_dir=directory / "state"), encoding="utf-8")
    saved_cwd, saved_env = Path.cwd(), dict(os.environ)
    for name in [n for n in os.environ if n.startswith("SUPERVISOR_")]:
        del os.environ[name]
    os.environ["SUPERVISOR_CONFIG"] = str(config)
    os.chdir(directory)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("supervisor.config.loading.CONFIG_PATHS", (str(config),))
        yield directory
    os.chdir(saved_cwd)
    os.environ.clear()
    os.environ.update(saved_env)


def never_endless(token: str) -> bool:
    """`run` starts the daemon; `--follow` (any abbreviation, `-f` in a cluster) polls forever."""
    if token == "run" or token.startswith("--f"):
        return False
    return not (token.startswith("-") and not token.startswith("--") and "f" in token)


TEXT = st.text(max_size=30).filter(never_endless)
REASONS = st.one_of(st.just(REASON), st.just("short"), st.text(min_size=15, max_size=40))
PATHS = st.sampled_from(["supervisor.toml", "/dev/zero", ".", "absent.toml", "", "state"])
SINCE = st.one_of(
    st.sampled_from(["1h", "0s", "99999999999999999999h", "2026-11-22T09:30", "0001-01-01"]),
    TEXT,
)


def options(*choices: st.SearchStrategy[list[str]]) -> st.SearchStrategy[list[str]]:
    """Any of `choices` (each a few argv tokens), in any order, plus maybe --config."""
    config = st.tuples(st.just("--config"), PATHS).map(list)
    chosen = st.lists(st.one_of(*choices, config), max_size=3)
    return chosen.map(lambda groups: list(itertools.chain.from_iterable(groups)))


def flag(name: str) -> st.SearchStrategy[list[str]]:
    return st.just([name])


def option(name: str, values: st.SearchStrategy[str]) -> st.SearchStrategy[list[str]]:
    return values.map(lambda value: [name, value])


WATCHDOG_NAMES = st.one_of(st.sampled_from(["w", "nope"]), TEXT)
OPERATORS = st.one_of(st.just("ops"), TEXT)
COMMAND_LINES = st.one_of(
    options(flag("--json"), option("--watchdog", WATCHDOG_NAMES)).map(lambda o: ["check", *o]),
    options(flag("--json")).map(lambda o: ["status", *o]),
    st.tuples(
        st.sampled_from(["trip", "kill"]), REASONS, options(option("--operator", OPERATORS))
    ).map(lambda t: [t[0], "--reason", t[1], *t[2]]),
    st.tuples(
        st.sampled_from(["breaker", "kill"]),
        REASONS,
        options(flag("--force"), option("--operator", OPERATORS)),
    ).map(lambda t: ["reset", t[0], "--reason", t[1], *t[2]]),
    options(option("--since", SINCE), flag("--json")).map(lambda o: ["events", *o]),
    st.tuples(st.sampled_from(["validate", "show"]), options()).map(
        lambda t: ["config", t[0], *t[1]]
    ),
    st.tuples(PATHS, options()).map(lambda t: ["config", "validate", t[0], *t[1]]),
    st.sampled_from([["--version"], ["--help"], ["check", "-h"], [], ["--bogus"]]),
)


@st.composite
def argvs(draw: st.DrawFn) -> list[str]:
    """A command line as an operator would type it, sometimes with a token inserted or
    replaced by anything at all."""
    argv: list[str] = list(draw(COMMAND_LINES))  # a copy: strategies hand out shared lists
    for _ in range(draw(st.integers(0, 2))):
        index = draw(st.integers(0, len(argv)))
        token = draw(TEXT)
        if index < len(argv) and draw(st.booleans()):
            argv[index] = token
        else:
            argv.insert(index, token)
    return argv


def run_main(argv: list[str]) -> tuple[int, str]:
    """The exit code (a return or argparse's SystemExit) and what went to stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code: object = cli.main(argv)
        except SystemExit as exc:
            code = exc.code if exc.code is not None else 0
    assert isinstance(code, int), (argv, code)
    return code, err.getvalue()


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(argv=argvs())
def test_any_arguments_exit_with_a_code_never_a_traceback(workdir: Path, argv: list[str]) -> None:
    code, stderr = run_main(argv)
    event(f"exit {code}")
    assert 0 <= code <= 130, (argv, code)
    assert "Traceback" not in stderr, (argv, stderr)


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["status"], 2),  # no live supervisor: Redis is down
        (["trip", "--reason", REASON], 1),  # refused: the breaker could not be engaged
        (["kill", "--reason", REASON], 1),  # the command ran, but its latch cannot be saved
        (["reset", "breaker", "--reason", REASON], 1),  # refused: cannot read Redis
        (["events", "--since", "1h"], 0),
        (["config", "validate", "/dev/zero"], EX_CONFIG),
    ],
)
def test_commands_meeting_a_store_that_is_down_say_so_with_a_code(
    workdir: Path, argv: list[str], code: int
) -> None:
    found, stderr = run_main(argv)
    assert (found, "Traceback" in stderr) == (code, False), stderr


CHECK_LINES = st.tuples(
    options(flag("--json"), option("--watchdog", WATCHDOG_NAMES), flag("-v")),
    st.lists(TEXT, max_size=2),
).map(lambda t: ["check", *t[0], *t[1]])


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(argv=CHECK_LINES)
def test_check_is_a_plugin_whatever_its_arguments(workdir: Path, argv: list[str]) -> None:
    """A Nagios plugin exits 0-3 and, outside --json and --help, prints a plugin line first."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        try:
            code: object = cli.main(argv)
        except SystemExit as exc:  # --help
            assert exc.code == 0 and ("-h" in argv or "--help" in argv), argv
            return
    assert code in (0, 1, 2, 3), (argv, code)
    if "--json" not in argv:
        first = out.getvalue().splitlines()[0]
        assert first.startswith("TRADING-SUPERVISOR "), (argv, first)
        assert parse_plugin_line(first)[0] == code

"""The `trading-supervisor` command. Exceptions become exit codes here and nowhere else."""

# Expected failures end a command with one line on stderr and its documented exit code: a bad
# config (78), Redis or PostgreSQL unreachable (CommandFailed: 1 for manual commands and
# `events`, 2 for `status`, 3 UNKNOWN for `check`). A reader that closes the pipe early
# (`status | head`) ends it quietly with 141, as a command killed by SIGPIPE would. Anything
# else is a bug and keeps its traceback. Every line printed that holds outside text is made
# safe first (supervisor/text.py).

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import anyio
import asyncpg
from redis.exceptions import RedisError

from supervisor import __version__, manual, nagios, shipped
from supervisor.check_once import evaluate_all
from supervisor.cli_tables import render_status, render_verdicts
from supervisor.config.environment import ignored_note
from supervisor.config.loading import config_schema, find_config, load_config, redacted
from supervisor.config.settings import Settings
from supervisor.constants import (
    EX_CONFIG,
    EX_FAILED,
    EX_OK,
    EX_PIPE,
    EX_REFUSED,
    EX_UNIT_PROBLEM,
    NAGIOS_UNKNOWN,
    STATUS_NO_LIVE_SUPERVISOR,
)
from supervisor.errors import ConfigError, SupervisorError, first_line
from supervisor.install_check import protect_home_warnings
from supervisor.model import Verdict
from supervisor.protection import Protection, build_protection, unmet_needs
from supervisor.publish.audit import read as audit_read
from supervisor.publish.logging import setup_cli_logging, setup_logging
from supervisor.publish.published import read_published
from supervisor.recorder.commands import add_commands as add_recorder_commands
from supervisor.secrets import mask_url
from supervisor.sources.clients import close_clients, open_clients
from supervisor.sources.redis import connect
from supervisor.state_dir_lock import StateDirInUse, lock_state_dir
from supervisor.text import safe_line, safe_lines

# What an unreachable Redis or PostgreSQL raises (TimeoutError is an OSError); a full disk
# under state_dir too.
IO_FAILURES = (RedisError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError)

log = logging.getLogger(__name__)


DESCRIPTION = (
    "Watch a live trading stack and act toward safety on its own (trip the breaker, halt,"
    " kill switch). `COMMAND --help` says more about each command."
)


class CommandFailed(Exception):
    """An expected failure: its message is the one line to print, `exit_code` the command's."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:
        if argv[:1] == ["check"] and exc.code not in (0, None):  # a plugin exits 0-3 only
            print(nagios.unknown_output("bad arguments (usage on stderr)"), flush=True)
            return NAGIOS_UNKNOWN
        raise
    handler: Callable[[argparse.Namespace], int] = args.handler
    if handler is not cmd_run:
        setup_cli_logging()
    try:
        code = handler(args)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return code
    except ConfigError as exc:
        complain(str(exc))
        return EX_CONFIG
    except CommandFailed as exc:
        complain(str(exc))
        return exc.exit_code
    except BrokenPipeError:
        return stdout_closed()
    except KeyboardInterrupt:
        return 130


def say(text: str) -> None:
    """Print lines of ours that hold outside text: each made safe, none split or forged."""
    print(safe_lines(text), flush=True)


def complain(text: str) -> None:
    print(f"trading-supervisor: {safe_lines(text)}", file=sys.stderr, flush=True)


def stdout_closed() -> int:
    """The reader went away (`status | head -1`): nothing more to say, and no traceback when
    Python flushes stdout at exit (docs.python.org/3/library/signal.html#note-on-sigpipe)."""
    with contextlib.suppress(OSError, ValueError):  # a stdout without a descriptor (a test's)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return EX_PIPE


@contextlib.contextmanager
def failing_with(settings: Settings, exit_code: int) -> Iterator[None]:
    """Redis or PostgreSQL unreachable ends the command: one line naming what failed, and
    `exit_code`. A closed stdout is left to main(), our own errors (manual.Refused is an
    OSError too) to their callers; anything else is a bug and keeps its traceback."""
    try:
        yield
    except (BrokenPipeError, SupervisorError):
        raise
    except IO_FAILURES as exc:
        raise CommandFailed(f"{what_failed(settings, exc)}: {first_line(exc)}", exit_code) from exc


def what_failed(settings: Settings, exc: BaseException) -> str:
    if isinstance(exc, RedisError):
        return f"redis {settings.redis.display_url}"
    if isinstance(exc, asyncpg.PostgresError | asyncpg.InterfaceError):
        dsn = settings.postgres.dsn.get_secret_value() if settings.postgres.dsn else ""
        return f"postgres {mask_url(dsn)}" if "://" in dsn else "postgres"
    if isinstance(exc, OSError) and exc.filename is not None:
        return str(exc.filename)
    return "I/O"


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        metavar="P",
        help="config file (default: $SUPERVISOR_CONFIG, "
        "/etc/trading-supervisor/supervisor.toml, ./config/supervisor.toml)",
    )
    parser = argparse.ArgumentParser(prog="trading-supervisor", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    run = commands.add_parser("run", parents=[common], help="run the daemon")
    run.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="lowest level logged (default: INFO)",
    )
    run.set_defaults(handler=cmd_run)

    check = commands.add_parser(
        "check", parents=[common], help="evaluate every watchdog once, never act"
    )
    check.add_argument("--json", action="store_true", help="the verdicts as JSON, same exit code")
    check.add_argument(
        "--watchdog", metavar="N", action="append", help="only this watchdog (repeatable)"
    )
    check.set_defaults(handler=cmd_check)

    status = commands.add_parser("status", parents=[common], help="the state published in Redis")
    status.add_argument("--json", action="store_true", help="the published state as JSON")
    status.set_defaults(handler=cmd_status)

    for verb, group, what in (
        ("trip", "breaker", "trip every breaker (reduce-only)"),
        ("kill", "kill", "engage every kill switch (halt / flatten)"),
    ):
        manual = commands.add_parser(verb, parents=[common], help=f"{what}; audited")
        manual.add_argument("--reason", required=True, help="why (20+ characters)")
        manual.add_argument("--operator", help="who (default: the login user)")
        manual.set_defaults(handler=cmd_engage, group=group)
    reset = commands.add_parser(
        "reset", parents=[common], help="release the breaker or kill switch"
    )
    reset.add_argument("group", choices=["breaker", "kill"], help="which to release")
    reset.add_argument("--reason", required=True, help="why (20+ characters)")
    reset.add_argument("--operator", help="who (default: the login user)")
    reset.add_argument("--force", action="store_true", help="even while a watchdog breaches")
    reset.set_defaults(handler=cmd_reset)

    events = commands.add_parser("events", parents=[common], help="the audit trail")
    events.add_argument(
        "--since",
        metavar="T",
        type=_since,
        default="24h",
        help="ISO-8601 time (naive: local) or a duration like '1h' ago (default: 24h)",
    )
    events.add_argument("--follow", "-f", action="store_true", help="poll every second")
    events.add_argument("--json", action="store_true", help="one JSON object per line")
    events.set_defaults(handler=cmd_events)

    files = commands.add_parser(
        "install-files",
        help="put the systemd unit, example config, alert rules, dashboard and ACLs in place",
    )
    files.add_argument(
        "--root", metavar="DIR", default="/", help="install under DIR instead of / (packaging)"
    )
    files.add_argument("--list", action="store_true", help="only say what goes where")
    files.set_defaults(handler=cmd_install_files)

    config = commands.add_parser("config", help="validate or show the configuration")
    config_commands = config.add_subparsers(required=True, metavar="ACTION")
    validate = config_commands.add_parser(
        "validate", parents=[common], help="validate; exit 78 if bad"
    )
    validate.add_argument("path", nargs="?", help="config file (overrides --config)")
    validate.set_defaults(handler=cmd_config_validate)
    show = config_commands.add_parser(
        "show", parents=[common], help="effective config, secrets masked"
    )
    show.set_defaults(handler=cmd_config_show)
    schema = config_commands.add_parser(
        "schema", help="the JSON Schema of the config file (for editors: taplo, Even Better TOML)"
    )
    schema.set_defaults(handler=cmd_config_schema)

    add_recorder_commands(commands, common)  # recorder show / export, replay

    unit = commands.add_parser("unit", help="the systemd unit (deploy/systemd)")
    unit_commands = unit.add_subparsers(required=True, metavar="ACTION")
    unit_check = unit_commands.add_parser(
        "check", help="would the unit's sandbox hide this install? exit 1 if so"
    )
    unit_check.set_defaults(handler=cmd_unit_check)
    return parser


def _load(args: argparse.Namespace) -> tuple[Path, Settings]:
    path = find_config(getattr(args, "path", None) or args.config)
    settings = load_config(path)
    problems = unmet_needs(settings)
    if problems:
        raise ConfigError(problems, str(path))
    return path, settings


def cmd_run(args: argparse.Namespace) -> int:
    from supervisor.daemon import Supervisor  # the daemon's imports are only needed here
    from supervisor.daemon.lease_keeper import IdentityInUse

    setup_logging(args.log_level)
    path, settings = _load(args)
    note = ignored_note(os.environ)  # supervisord's SUPERVISOR_ENABLED and the like
    if note:
        log.info("%s", note)
    try:  # the descriptor is never closed: the lock is held until the process ends
        lock_state_dir(settings.supervisor.state_dir)
    except StateDirInUse as exc:
        raise CommandFailed(str(exc), EX_CONFIG) from None
    supervisor = Supervisor(settings, config_path=path)
    try:
        anyio.run(supervisor.run, backend="asyncio")
    except IdentityInUse as exc:
        raise CommandFailed(str(exc), exc.exit_code) from None
    return EX_OK


def cmd_check(args: argparse.Namespace) -> int:
    """A Nagios plugin: whatever goes wrong, one first line on stdout and an exit code 0-3."""
    try:
        return _check(args)
    except ConfigError as exc:
        complain(str(exc))
        return _check_unknown(args, f"bad config: {'; '.join(exc.problems)}")
    except CommandFailed as exc:
        complain(str(exc))
        return _check_unknown(args, str(exc))


def _check_unknown(args: argparse.Namespace, reason: str) -> int:
    if args.json:
        print(json.dumps({"status": "UNKNOWN", "reason": safe_line(reason)}))
    else:
        print(nagios.unknown_output(reason))
    return NAGIOS_UNKNOWN


def _check(args: argparse.Namespace) -> int:
    _path, settings = _load(args)
    names = set(args.watchdog or [])
    unknown_names = names - {w.name for w in settings.watchdogs}
    if unknown_names:
        return _check_unknown(args, f"no such watchdog: {', '.join(sorted(unknown_names))}")
    with failing_with(settings, NAGIOS_UNKNOWN):
        published = anyio.run(read_published, settings)
        verdicts = anyio.run(evaluate_all, settings, names, time.time)
    configs = {w.name: w for w in settings.watchdogs}
    code, line = nagios.plugin_output(
        verdicts,
        lambda v: configs[v.watchdog].alert_levels(v.subject),
        nagios.Protector.from_published(published),
    )
    if args.json:
        print(json.dumps([_verdict_json(v) for v in verdicts], indent=2))
    else:
        print(line)
        # Long output: Nagios and Icinga read perfdata after a "|" on any line.
        print(render_verdicts(verdicts).replace("|", "/"))
    return code


def _verdict_json(verdict: Verdict) -> dict[str, object]:
    return {
        "watchdog": verdict.watchdog,
        "subject": verdict.subject,
        "status": verdict.status.name,
        "value": verdict.value,
        "unit": verdict.unit,
        "threshold": verdict.threshold,
        "reason": verdict.reason,
    }


def cmd_status(args: argparse.Namespace) -> int:
    _path, settings = _load(args)
    with failing_with(settings, STATUS_NO_LIVE_SUPERVISOR):
        published = anyio.run(read_published, settings)
    if args.json:
        print(json.dumps(published, indent=2, sort_keys=True))
    else:
        print(render_status(published))
    return EX_OK if published.get("alive") else STATUS_NO_LIVE_SUPERVISOR


def cmd_engage(args: argparse.Namespace) -> int:
    _path, settings = _load(args)
    operator = manual.operator_name(args.operator)
    return _manual(settings, manual.engage(settings, args.group, args.reason, operator))


def cmd_reset(args: argparse.Namespace) -> int:
    _path, settings = _load(args)
    operator = manual.operator_name(args.operator)
    return _manual(settings, manual.reset(settings, args.group, args.reason, operator, args.force))


def _manual(settings: Settings, action: Coroutine[Any, Any, manual.Done]) -> int:
    async def run() -> manual.Done:
        return await action

    try:
        with failing_with(settings, EX_FAILED):
            done = anyio.run(run)
    except manual.Refused as exc:
        complain(str(exc))
        return EX_REFUSED
    say(done.message)
    return EX_OK


def _since(text: str) -> float:
    try:
        return audit_read.parse_since(text, time.time())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def cmd_events(args: argparse.Namespace) -> int:
    """The audit trail: Postgres (plus outbox lines not replayed yet), else the events stream."""
    _path, settings = _load(args)
    render = audit_read.event_json if args.json else audit_read.format_event
    with contextlib.suppress(KeyboardInterrupt), failing_with(settings, EX_FAILED):
        anyio.run(_show_events, settings, args.since, args.follow, render)
    return EX_OK


async def _show_events(
    settings: Settings, since: float, follow: bool, render: Callable[[audit_read.SourcedEvent], str]
) -> None:
    redis = connect(settings.redis, "trading-supervisor-events")
    reader = audit_read.TrailReader(
        settings.supervisor.state_dir, redis, settings.postgres.dsn, settings.supervisor.namespace
    )
    try:
        await audit_read.show_events(
            reader,
            since,
            emit=lambda item: print(render(item), flush=True),  # each rendering is one safe line
            note=lambda text: print(f"note: {safe_line(text)}", file=sys.stderr, flush=True),
            follow=follow,
        )
    finally:
        await reader.close()
        await redis.aclose()


def cmd_config_validate(args: argparse.Namespace) -> int:
    path, settings = _load(args)
    note = ignored_note(os.environ)
    if note:
        complain(f"note: {note}")
    protection = anyio.run(_build_and_close, settings)
    say(
        f"{path}: OK ({len(protection.watchdogs)} watchdogs, {len(protection.actuators)} actuators,"
        f" {len(protection.sessions)} sessions)"
    )
    return EX_OK


async def _build_and_close(settings: Settings) -> Protection:
    """Build exactly what `run` builds (no I/O: every client connects lazily), then close."""
    clients = open_clients(settings.redis, settings.postgres, "config-validate")
    try:
        return build_protection(settings, clients)
    finally:
        await close_clients(clients)


def cmd_unit_check(args: argparse.Namespace) -> int:
    """Only here, where the unit is installed or checked: on a laptop or under supervisord
    ProtectHome= hides nothing, and a warning on every command would teach to ignore it."""
    warnings = protect_home_warnings()
    for warning in warnings:
        complain(f"warning: {warning}")
    if warnings:
        return EX_UNIT_PROBLEM
    say(f"OK: nothing the unit's ProtectHome=yes would hide (Python {sys.executable})")
    return EX_OK


def cmd_install_files(args: argparse.Namespace) -> int:
    """The files the wheel carries, where an install from a checkout would copy them by hand;
    the config only where there is none (supervisor/shipped.py)."""
    if args.list:
        for item in shipped.SHIPPED:
            print(f"{item.source} -> {item.target}")
        return EX_OK
    try:
        done = shipped.install(Path(args.root))
    except OSError as exc:
        raise CommandFailed(f"{what_failed_on(exc)}: {first_line(exc)}", EX_FAILED) from exc
    say("\n".join(done))
    say("next: systemctl daemon-reload && systemctl enable --now trading-supervisor")
    return EX_OK


def what_failed_on(exc: OSError) -> str:
    return str(exc.filename) if exc.filename is not None else "install-files"


def cmd_config_schema(args: argparse.Namespace) -> int:
    print(json.dumps(config_schema(), indent=2, sort_keys=True))
    return EX_OK


def cmd_config_show(args: argparse.Namespace) -> int:
    _path, settings = _load(args)
    print(json.dumps(redacted(settings), indent=2, default=str))
    return EX_OK

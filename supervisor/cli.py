"""The `trading-supervisor` command. Exceptions become exit codes here and nowhere else."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import anyio

from supervisor import __version__, manual
from supervisor.check_once import evaluate_all
from supervisor.cli_tables import render_status, render_verdicts
from supervisor.clients import close_clients, open_clients
from supervisor.config.loading import find_config, load_config, redacted
from supervisor.config.settings import Settings
from supervisor.constants import (
    EX_CONFIG,
    EX_OK,
    EX_REFUSED,
    NAGIOS_CRITICAL,
    NAGIOS_OK,
    NAGIOS_UNKNOWN,
    NAGIOS_WARNING,
    STATUS_NO_LIVE_SUPERVISOR,
)
from supervisor.errors import ConfigError
from supervisor.install_check import protect_home_warnings
from supervisor.model import Status, Verdict
from supervisor.protection import Protection, build_protection, unmet_needs
from supervisor.publish.audit import read as audit_read
from supervisor.publish.logging import setup_logging
from supervisor.publish.published import read_published
from supervisor.sources.redis import connect


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except ConfigError as exc:
        print(f"trading-supervisor: {exc}", file=sys.stderr)
        return EX_CONFIG
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        metavar="P",
        help="config file (default: $SUPERVISOR_CONFIG, "
        "/etc/trading-supervisor/supervisor.toml, ./config/supervisor.toml)",
    )
    parser = argparse.ArgumentParser(prog="trading-supervisor", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    run = commands.add_parser("run", parents=[common], help="run the daemon")
    run.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    run.set_defaults(handler=cmd_run)

    check = commands.add_parser(
        "check", parents=[common], help="evaluate every watchdog once, never act"
    )
    check.add_argument("--json", action="store_true")
    check.add_argument(
        "--watchdog", metavar="N", action="append", help="only this watchdog (repeatable)"
    )
    check.set_defaults(handler=cmd_check)

    status = commands.add_parser("status", parents=[common], help="the state published in Redis")
    status.add_argument("--json", action="store_true")
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
    reset.add_argument("group", choices=["breaker", "kill"])
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

    setup_logging(args.log_level)
    path, settings = _load(args)
    supervisor = Supervisor(settings, config_path=path)
    anyio.run(supervisor.run, backend="asyncio")
    return EX_OK


def cmd_check(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING)
    _path, settings = _load(args)
    names = set(args.watchdog or [])
    unknown_names = names - {w.name for w in settings.watchdogs}
    if unknown_names:
        print(f"no such watchdog: {', '.join(sorted(unknown_names))}", file=sys.stderr)
        return NAGIOS_UNKNOWN
    verdicts = anyio.run(evaluate_all, settings, names, time.time)
    if args.json:
        print(json.dumps([_verdict_json(v) for v in verdicts], indent=2))
    else:
        print(render_verdicts(verdicts))
    return nagios_code([v.status for v in verdicts])


def nagios_code(statuses: list[Status]) -> int:
    """2 if anything breaches, else 3 if anything is unknown, else 1 if anything warns, else 0.

    UNKNOWN outranks WARN: for a safety check, not being able to see is worse than a warning.
    """
    if any(s.is_failing for s in statuses):
        return NAGIOS_CRITICAL
    if Status.UNKNOWN in statuses:
        return NAGIOS_UNKNOWN
    if Status.WARN in statuses:
        return NAGIOS_WARNING
    return NAGIOS_OK


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
    published = anyio.run(read_published, settings)
    if args.json:
        print(json.dumps(published, indent=2, sort_keys=True))
    else:
        print(render_status(published))
    return EX_OK if published.get("alive") else STATUS_NO_LIVE_SUPERVISOR


def cmd_engage(args: argparse.Namespace) -> int:
    _path, settings = _load(args)
    operator = manual.operator_name(args.operator)
    return _manual(manual.engage(settings, args.group, args.reason, operator))


def cmd_reset(args: argparse.Namespace) -> int:
    _path, settings = _load(args)
    operator = manual.operator_name(args.operator)
    return _manual(manual.reset(settings, args.group, args.reason, operator, args.force))


def _manual(action: Coroutine[Any, Any, manual.Done]) -> int:
    async def run() -> manual.Done:
        return await action

    try:
        done = anyio.run(run)
    except manual.Refused as exc:
        print(f"trading-supervisor: {exc}", file=sys.stderr)
        return EX_REFUSED
    print(done.message)
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
    with contextlib.suppress(KeyboardInterrupt):  # the way out of --follow
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
            emit=lambda item: print(render(item), flush=True),
            note=lambda text: print(f"note: {text}", file=sys.stderr, flush=True),
            follow=follow,
        )
    finally:
        await reader.close()
        await redis.aclose()


def cmd_config_validate(args: argparse.Namespace) -> int:
    for warning in protect_home_warnings():  # before the config: an install problem is worse
        print(f"trading-supervisor: warning: {warning}", file=sys.stderr)
    path, settings = _load(args)
    protection = anyio.run(_build_and_close, settings)
    print(
        f"{path}: OK ({len(protection.watchdogs)} watchdogs, {len(protection.actuators)} actuators,"
        f" {len(protection.sessions)} sessions)"
    )
    return EX_OK


async def _build_and_close(settings: Settings) -> Protection:
    """Build exactly what `run` builds (no I/O: every client connects lazily), then close."""
    clients = open_clients(settings, "config-validate")
    try:
        return build_protection(settings, clients)
    finally:
        await close_clients(clients)


def cmd_config_show(args: argparse.Namespace) -> int:
    _path, settings = _load(args)
    print(json.dumps(redacted(settings), indent=2, default=str))
    return EX_OK

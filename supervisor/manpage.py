"""`man trading-supervisor`, written from the command's own argparse parser.

Every command, its arguments and their help come from `supervisor.cli`'s parser, so the page
cannot fall behind the command: a new command or option is on the page at the next build, and
one without help text is refused here (MissingHelp) rather than shipped undocumented. What the
parser cannot say (exit codes, files, environment) is written below, next to the constants
it names. `python -m supervisor.manpage > trading-supervisor.1` writes the page; the Debian
package carries it gzipped in /usr/share/man/man1/ (scripts/build-deb).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from dataclasses import dataclass

from supervisor import __version__
from supervisor.cli import DESCRIPTION, _parser
from supervisor.constants import CONFIG_ENV, CONFIG_PATHS, EX_CONFIG, EX_PIPE

PROG = "trading-supervisor"
SUMMARY = "watch a live trading stack and act toward safety on its own"


class MissingHelp(ValueError):
    """A command or option without help text: it would be on the page with nothing to say."""


@dataclass(frozen=True)
class Command:
    """One command a user types: its words after the program name, help and parser."""

    words: tuple[str, ...]
    help: str
    parser: argparse.ArgumentParser


def commands(parser: argparse.ArgumentParser, words: tuple[str, ...] = ()) -> Iterator[Command]:
    """Every leaf command under `parser` (`run`, `config validate`, ...), in parser order."""
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        helps = {choice.dest: choice.help for choice in action._choices_actions}
        for name, subparser in action.choices.items():
            path = (*words, name)
            if not helps.get(name):
                raise MissingHelp(f"{PROG} {' '.join(path)}: the command has no help text")
            if _has_subcommands(subparser):
                yield from commands(subparser, path)
            else:
                yield Command(path, str(helps[name]), subparser)


def _has_subcommands(parser: argparse.ArgumentParser) -> bool:
    return any(isinstance(a, argparse._SubParsersAction) for a in parser._actions)


def arguments(command: Command) -> list[argparse.Action]:
    """The command's own arguments, without -h (every command has it; the page says so once)."""
    return [a for a in command.parser._actions if not isinstance(a, argparse._HelpAction)]


def roff(text: str) -> str:
    """Text safe in a roff line: backslashes escaped, no line read as a request."""
    escaped = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join(
        f"\\&{line}" if line.startswith((".", "'")) else line for line in escaped.splitlines()
    )


def argument_name(action: argparse.Action) -> str:
    """`--reason R`, `--json`, `{breaker,kill}` in roff: the option bold, its value italic."""
    if not action.option_strings:
        return f"\\fI{roff(_metavar(action))}\\fR"
    names = ", ".join(f"\\fB{roff(option)}\\fR" for option in action.option_strings)
    if action.nargs == 0:
        return names
    return f"{names}\\~\\fI{roff(_metavar(action))}\\fR"  # \\~: never split in two


def _metavar(action: argparse.Action) -> str:
    if isinstance(action.metavar, str):
        return action.metavar
    if action.choices is not None:
        return "{" + ",".join(map(str, action.choices)) + "}"
    return action.dest.upper() if action.option_strings else action.dest


def synopsis(command: Command) -> str:
    """`trading-supervisor reset {breaker,kill} --reason R [--force]` in roff."""
    parts = [f"\\fB{roff(' '.join((PROG, *command.words)))}\\fR"]
    for action in arguments(command):
        name = argument_name(action)
        optional = (action.option_strings and not action.required) or action.nargs == "?"
        parts.append(f"[{name}]" if optional else name)
    return " ".join(parts)


def argument_help(command: Command, action: argparse.Action) -> str:
    if not action.help:
        where = f"{PROG} {' '.join(command.words)} {'/'.join(action.option_strings) or action.dest}"
        raise MissingHelp(f"{where}: the argument has no help text")
    return roff(argparse.HelpFormatter(PROG)._expand_help(action))  # %(default)s, as --help


def command_section(command: Command) -> list[str]:
    lines = [f'.SS "{roff(" ".join(command.words))}"', synopsis(command), ".br"]
    lines.append(roff(command.help[0].upper() + command.help[1:] + "."))
    for action in arguments(command):
        lines += [".TP", argument_name(action), argument_help(command, action)]
    return lines


STATIC_SECTIONS = f"""\
.SH EXIT STATUS
.TP
0
Success.
.TP
1
A manual command (\\fBtrip\\fR, \\fBkill\\fR, \\fBreset\\fR) was refused, or Redis or
PostgreSQL could not be reached (also \\fBevents\\fR); \\fBinstall\\-files\\fR could not write.
.TP
2
\\fBstatus\\fR: no supervisor is alive.
.TP
{EX_CONFIG}
The configuration is refused (EX_CONFIG); the field path is on stderr. systemd does not
restart the daemon for it.
.TP
{EX_PIPE}
The reader closed the pipe early.
.PP
\\fBcheck\\fR is a Nagios plugin: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN, and nothing else.
.SH ENVIRONMENT
.TP
.B {CONFIG_ENV}
The config file when \\fB\\-\\-config\\fR is not given.
.TP
.B CREDENTIALS_DIRECTORY
Where a config value \\fBcred:\\fR\\fINAME\\fR is read from (set by systemd's LoadCredential=).
.SH FILES
.TP
.I {roff(CONFIG_PATHS[0])}
The config file (then \\fI{roff(CONFIG_PATHS[1])}\\fR).
.TP
.I /etc/trading\\-supervisor/credentials/
Secrets the unit loads, root only.
.TP
.I /var/lib/trading\\-supervisor/
State: engagements that survive restarts, the audit outbox.
.TP
.I /usr/share/trading\\-supervisor/
Prometheus rules, Grafana dashboard, Redis ACLs, example configs.
.SH SEE ALSO
.BR systemctl (1),
.BR journalctl (1),
.BR systemd.exec (5)
"""


def render(parser: argparse.ArgumentParser | None = None) -> str:
    """The whole page in roff (man(7) macros)."""
    parser = parser or _parser()
    found = list(commands(parser))
    lines = [
        f'.TH TRADING\\-SUPERVISOR 1 "" "{PROG} {__version__}" "User Commands"',
        ".nh",  # neither hyphenated nor stretched: paths and options are copied from the page
        ".ad l",
        ".SH NAME",
        f"{roff(PROG)} \\- {SUMMARY}",
        ".SH SYNOPSIS",
        f"\\fB{roff(PROG)}\\fR \\fICOMMAND\\fR [\\fIOPTIONS\\fR]",
        ".br",
        f"\\fB{roff(PROG)}\\fR \\fB\\-\\-version\\fR",
        ".SH DESCRIPTION",
        roff(DESCRIPTION.replace("`", "")),
        ".PP",
        "Every command takes \\fB\\-h\\fR, \\fB\\-\\-help\\fR.",
        ".SH COMMANDS",
    ]
    for command in found:
        lines += command_section(command)
    return "\n".join(lines) + "\n" + STATIC_SECTIONS


def main() -> int:
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The supervisor's own exceptions (each subclasses the nearest builtin, data as attributes),
`first_line`, the one way an exception is shown in a log line, a reason or a note, and
EXPRESSION_FAILURES, what a jmespath expression may raise on a hostile document."""

from jmespath.exceptions import JMESPathError

from supervisor.secrets import mask_urls
from supervisor.text import safe_line

# What evaluating a jmespath expression on a document it was not written for may raise: a
# function given the wrong type, absurd nesting, and arithmetic on JSON integers beyond any
# float (`avg(@)` of a 400-digit integer raises OverflowError).
EXPRESSION_FAILURES = (JMESPathError, ArithmeticError, RecursionError, TypeError, ValueError)

# Exception texts can carry data from outside (a venue's reply, a server's message): one line,
# this long at most, is what a log line, a verdict reason or an audit note holds of them.
FIRST_LINE_MAX_CHARS = 200


class SupervisorError(Exception):
    """Base of every error raised on purpose by the supervisor."""


class ConfigError(SupervisorError, ValueError):
    """The configuration is invalid; `problems` holds one "field.path: message" per line."""

    def __init__(self, problems: list[str], source: str = "") -> None:
        self.problems = problems
        self.source = source
        where = f" in {safe_line(source)}" if source else ""
        # A problem names keys and values from the file (a quoted TOML key may hold a newline):
        # one safe line each, so the message has exactly one line per problem.
        shown = "\n  ".join(safe_line(problem) for problem in problems)
        super().__init__(f"invalid configuration{where}:\n  {shown}")


class SourceError(SupervisorError, OSError):
    """A source could not be read; the watchdog becomes UNKNOWN with this reason."""


class ActuatorError(SupervisorError, RuntimeError):
    """An actuator could not carry out or confirm its action."""


def first_line(exc: BaseException) -> str:
    """`ExcType: first line of the message`, or `ExcType` when the message is blank (a bare
    TimeoutError), its URLs masked (a library's message names the URL it failed on, user
    part and query included), made safe (text.py) and cut to FIRST_LINE_MAX_CHARS. Masked
    before the cut: a URL cut short could lose the `@` that marks its user part. Our own
    errors are written to be read: their message alone (a class name before "refused: ..."
    or before a message that quotes another first_line is what made "Refused: refused: ..."
    stutter)."""
    name = type(exc).__name__
    lines = mask_urls(str(exc)).strip().splitlines()
    if lines and isinstance(exc, SupervisorError):
        return safe_line(lines[0].strip(), FIRST_LINE_MAX_CHARS)
    text = f"{name}: {lines[0].strip()}" if lines else name
    return safe_line(text, FIRST_LINE_MAX_CHARS)

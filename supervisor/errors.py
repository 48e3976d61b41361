"""The supervisor's own exceptions: each subclasses the nearest builtin, data as attributes."""


class SupervisorError(Exception):
    """Base of every error raised on purpose by the supervisor."""


class ConfigError(SupervisorError, ValueError):
    """The configuration is invalid; `problems` holds one "field.path: message" per line."""

    def __init__(self, problems: list[str], source: str = "") -> None:
        self.problems = problems
        self.source = source
        where = f" in {source}" if source else ""
        super().__init__(f"invalid configuration{where}:\n  " + "\n  ".join(problems))


class SourceError(SupervisorError, OSError):
    """A source could not be read; the watchdog becomes UNKNOWN with this reason."""


class ActuatorError(SupervisorError, RuntimeError):
    """An actuator could not carry out or confirm its action."""

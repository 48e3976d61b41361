"""command: run a program (argv list, never a shell) to carry out an action.

The program gets stdin from /dev/null, the supervisor's environment plus SUPERVISOR_REASON,
SUPERVISOR_WATCHDOG, SUPERVISOR_INCIDENT_ID, SUPERVISOR_INSTANCE_ID and SUPERVISOR_SEVERITY, and
its own session (process group). The last 4 KiB of stdout and of stderr are kept for the audit
trail (Outcome.detail, or the ActuatorError message). Past `timeout` the whole process group is
killed (SIGKILL) and the action fails; a non-zero exit fails with the code and stderr's tail.
If the engage itself is cancelled (the daemon's own deadline), the group is killed too.

A command has no state we can read back: is_engaged() says only whether this process ran it
successfully, and `readable` is False so the daemon never "re-engages" it from a reading.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from supervisor.actuators.base import ActionContext, Actuator, ActuatorKind, Outcome
from supervisor.config.actuator_base import ActuatorBase
from supervisor.config.types import Timeout, check_text
from supervisor.errors import ActuatorError
from supervisor.model import Decision, TradingState
from supervisor.quantities import format_duration

TAIL_BYTES = 4096
KILL_WAIT_S = 5.0


class Tail:
    """The last `limit` bytes of a stream, kept as it is read (partial output survives a kill)."""

    def __init__(self, limit: int = TAIL_BYTES) -> None:
        self.limit = limit
        self.data = bytearray()

    async def drain(self, stream: asyncio.StreamReader | None) -> None:
        if stream is None:
            return
        while chunk := await stream.read(65536):
            self.data += chunk
            del self.data[: -self.limit]

    def text(self) -> str:
        return self.data.decode("utf-8", "replace").strip()


def environment(decision: Decision, context: ActionContext) -> dict[str, str]:
    return {
        **os.environ,
        "SUPERVISOR_REASON": decision.reason,
        "SUPERVISOR_WATCHDOG": decision.source,
        "SUPERVISOR_INCIDENT_ID": decision.incident_id,
        "SUPERVISOR_INSTANCE_ID": context.instance_id,
        "SUPERVISOR_SEVERITY": decision.severity.name,
        "SUPERVISOR_FENCING_TOKEN": str(decision.fencing_token or ""),
    }


def kill_group(process: asyncio.subprocess.Process) -> None:
    """SIGKILL the process group we started (start_new_session: its pgid is its pid)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def check_argv(argv: list[str]) -> list[str]:
    """What exec() can run: a program name, and no NUL anywhere (exec raises ValueError on
    one, at the moment of the action)."""
    check_text(argv[0])
    for index, arg in enumerate(argv):
        if "\0" in arg:
            raise ValueError(f"argument {index} contains a NUL character")
    return argv


class CommandActuatorConfig(ActuatorBase):
    kind: Literal["command"]
    argv: Annotated[list[str], Field(min_length=1), AfterValidator(check_argv)]
    timeout_s: Timeout = Field(30.0, alias="timeout")


class CommandActuator(Actuator):
    config: CommandActuatorConfig

    def __init__(self, name: str, config: CommandActuatorConfig) -> None:
        super().__init__(name, TradingState.from_level(config.level))
        self.config = config
        self._succeeded = False

    @property
    def max_duration_s(self) -> float:
        """How long one engage() may take: the timeout plus the kill and reap."""
        return self.config.timeout_s + KILL_WAIT_S + 1.0

    @property
    def readable(self) -> bool:
        return False

    def note_reset(self) -> None:
        self._succeeded = False  # the reset is the only news that it was undone

    @property
    def program(self) -> str:
        return self.config.argv[0]

    async def engage(self, decision: Decision, context: ActionContext) -> Outcome:
        stdout, stderr = Tail(), Tail()
        try:
            process = await asyncio.create_subprocess_exec(
                *self.config.argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=environment(decision, context),
                start_new_session=True,
            )
        except OSError as exc:
            raise ActuatorError(f"{self.name}: cannot run {self.program!r}: {exc}") from None
        context.sent()
        code = await self._wait(process, stdout, stderr)
        if code != 0:
            raise ActuatorError(f"{self.name}: {self._exit(code)}; stderr: {stderr.text()!r}")
        changed = not self._succeeded
        self._succeeded = True
        detail = f"{self.program} exited 0; stdout: {stdout.text()!r}; stderr: {stderr.text()!r}"
        return Outcome(changed, detail, 0)

    async def _wait(self, process: asyncio.subprocess.Process, out: Tail, err: Tail) -> int:
        try:
            async with asyncio.timeout(self.config.timeout_s):
                await asyncio.gather(out.drain(process.stdout), err.drain(process.stderr))
                return await process.wait()
        except TimeoutError:
            kill_group(process)
            async with asyncio.timeout(KILL_WAIT_S):
                await process.wait()
            raise ActuatorError(
                f"{self.name}: {self.program} killed after"
                f" {format_duration(self.config.timeout_s)} timeout; stdout: {out.text()!r};"
                f" stderr: {err.text()!r}"
            ) from None
        finally:
            if process.returncode is None:  # cancelled from outside: leave nothing behind
                kill_group(process)

    def _exit(self, code: int) -> str:
        if code < 0:
            return f"{self.program} killed by signal {-code}"
        return f"{self.program} exited with code {code}"

    async def is_engaged(self) -> bool:
        return self._succeeded


KIND = ActuatorKind(
    config=CommandActuatorConfig,
    build=lambda name, config, clients: CommandActuator(name, config),
    needs=frozenset(),  # runs a local program
)

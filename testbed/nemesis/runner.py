"""Plays a schedule against the real stack and records the history.

The main thread runs the schedule's actions in time order (a late action runs late, and its
real time is what is recorded); a recorder thread polls the breaker's history, the
`{ns}:events` stream and the daemons' processes every 0.1 s. At the end every fault is undone,
the outboxes get time to drain into PostgreSQL, and the rest is read: PostgreSQL's audit
table, the outboxes left, the daemons' logs, their exit codes on a clean stop.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import asyncpg
from redis import Redis
from redis.exceptions import RedisError

from supervisor.constants import AUDIT_OUTBOX_FILE
from testbed.daemon_process import cli
from testbed.nemesis import faults
from testbed.nemesis.history import (
    AuditRow,
    BreakerTrip,
    Exit,
    History,
    Injected,
    Reset,
    TokenSeen,
    VenueRequest,
)
from testbed.nemesis.history import Window as RealWindow
from testbed.nemesis.schedule import Fault, Schedule, StaleWindow
from testbed.nemesis.stack import NAMESPACE, Stack, start_stack, stop_stack
from testbed.waiting import wait_until

POLL_S = 0.1
EXCEPTION = re.compile(r"^[A-Za-z_.]*(Error|Exception): ")  # a traceback's last line
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ ")
Action = tuple[float, Callable[[], None]]
RESET_ATTEMPTS = 5  # ~15 s: longer than any Redis outage of the schedule
RESTART_SEC_S = 1.0  # a daemon that exits on its own is restarted, as systemd would
DRAIN_S = 20.0  # the outboxes get this long to drain once PostgreSQL is back for good
RESET_REASON = "nemesis: the incident of stale window {index} is over, releasing"


@dataclass
class Recorder:
    """Polls what can be lost later (a FLUSHALL empties the breaker history and the stream)."""

    stack: Stack
    history: History
    stop: threading.Event = field(default_factory=threading.Event)
    seen_entries: set[bytes] = field(default_factory=set)
    last_stream_id: bytes = b"0-0"
    counted_daemons: set[int] = field(default_factory=set)

    def run(self) -> None:
        client = self.stack.admin()
        try:
            while not self.stop.wait(POLL_S):
                now = time.monotonic() - self.stack.t0
                self._exits(now)
                try:
                    self._breaker(client, now)
                    self._token(client, now)
                    self._stream(client)
                except (RedisError, OSError):
                    continue  # Redis away: what it held meanwhile is read next time
        finally:
            client.close()

    def _breaker(self, client: Redis, now: float) -> None:
        entries = cast(list[bytes], client.zrange("circuit_breaker:history", 0, -1))
        for raw in entries:
            if raw in self.seen_entries:
                continue
            self.seen_entries.add(raw)
            entry = json.loads(raw)
            if entry.get("event") == "trip":
                token = entry.get("fencing_token")
                self.history.breaker.append(
                    BreakerTrip(
                        now,
                        str(entry.get("incident_id")),
                        str(entry.get("by")),
                        None if token is None else str(token),
                    )
                )

    def _token(self, client: Redis, now: float) -> None:
        raw = client.get(f"{NAMESPACE}:leader:fencing")
        try:
            token = int(cast(bytes, raw))
        except (TypeError, ValueError):
            return  # no lease yet (Redis emptied), or garbage in the counter
        if not self.history.tokens or self.history.tokens[-1].token != token:
            self.history.tokens.append(TokenSeen(now, token))

    def _stream(self, client: Redis) -> None:
        key = f"{NAMESPACE}:events"
        try:
            entries = cast(list[Any], client.xrange(key, min=b"(" + self.last_stream_id))
        except RedisError:
            return  # garbage of another type at the key
        for entry_id, fields in entries:
            self.last_stream_id = entry_id
            event_id = fields.get(b"id")
            if isinstance(event_id, bytes) and _is_uuid(event_id):  # not garbage of ours
                self.history.stream_ids.append(event_id.decode())

    def _exits(self, now: float) -> None:
        for instance in self.stack.instances.values():
            daemon = instance.daemon
            if daemon is None or id(daemon) in self.counted_daemons:
                continue
            code = daemon.process.poll()
            if code is not None:
                self.counted_daemons.add(id(daemon))
                self.history.exits.append(Exit(instance.name, now, code))


class Runner:
    def __init__(self, schedule: Schedule, directory: Path, say: Callable[[str], None]) -> None:
        self.schedule = schedule
        self.directory = directory
        self.say = say
        timing = schedule.timing
        self.history = History(schedule.seed, timing, schedule.instances)
        self.stack: Stack | None = None
        self.open: dict[int, faults.Open] = {}
        self._window_start = 0.0

    def now(self) -> float:
        assert self.stack is not None
        return time.monotonic() - self.stack.t0

    def run(self) -> History:
        t = self.schedule.timing
        clock = "clock" in self.schedule.faults_enabled
        self.stack = start_stack(
            self.directory,
            self.schedule.instances,
            clock_faults=clock,
            breach_s=t.breach_s,
            interval_s=t.interval_s,
            lease_ttl_s=t.lease_ttl_s,
        )
        recorder = Recorder(self.stack, self.history)
        thread = threading.Thread(target=recorder.run, daemon=True)
        try:
            self._start_instances()
            self._set_t0(time.monotonic())
            thread.start()
            self._play()
            self._heal()
            self._drain()
        finally:
            recorder.stop.set()
            thread.join(timeout=10)
            self._collect()
            codes = stop_stack(self.stack)
            now = self.now()
            self.history.exits += [
                Exit(name, now, code, final=True) for name, code in codes.items()
            ]
            self._journal()
        return self.history

    def _set_t0(self, t0: float) -> None:
        assert self.stack is not None
        self.stack.t0 = self.stack.venue.t0 = self.stack.feed.t0 = t0

    def _start_instances(self) -> None:
        assert self.stack is not None
        for name, instance in self.stack.instances.items():
            instance.start()
            wait_until(lambda n=name: self._role(n) is not None, 30, f"{name} to start")  # type: ignore[misc]
        first = next(iter(self.stack.instances))
        wait_until(lambda: faults.leader_name(self.stack) == first, 30, f"{first} to lead")  # type: ignore[arg-type]

    def _role(self, name: str) -> str | None:
        assert self.stack is not None
        try:
            with self.stack.admin() as client:
                raw = client.hget(f"{NAMESPACE}:instance:{name}", "role")
        except (RedisError, OSError):
            return None
        return raw.decode() if isinstance(raw, bytes) else None

    # --- the schedule -------------------------------------------------------------------------

    def _play(self) -> None:
        """Two timelines: the feed and the operator (stale windows, resets) in a thread, the
        faults here. Each runs in order and late when it must (a reset retried while Redis
        is away); neither waits for the other, so no fault waits behind a reset."""
        windows: list[Action] = []
        for w in self.schedule.windows:
            windows += [
                (w.start_s, lambda w=w: self._pause(w)),  # type: ignore[misc]
                (w.end_s, lambda w=w: self._resume(w)),  # type: ignore[misc]
                (w.reset_s, lambda w=w: self._reset(w)),  # type: ignore[misc]
            ]
        faults_: list[Action] = []
        for f in self.schedule.faults:
            faults_.append((f.at_s, lambda f=f: self._begin(f)))  # type: ignore[misc]
            if f.duration_s > 0:
                faults_.append((f.end_s, lambda f=f: self._end(f.index)))  # type: ignore[misc]
        failed: list[BaseException] = []
        operator = threading.Thread(target=self._operator, args=(windows, failed), daemon=True)
        operator.start()
        self._timeline(sorted(faults_, key=lambda a: a[0]), True)
        while operator.is_alive():
            operator.join(timeout=0.2)
            self._restart_failed()
        if failed:
            raise failed[0]

    def _operator(self, actions: list[Action], failed: list[BaseException]) -> None:
        try:
            self._timeline(actions, False)
        except BaseException as exc:  # raised again by the main thread
            failed.append(exc)

    def _timeline(self, actions: list[Action], restarts: bool) -> None:
        for at_s, action in actions:
            while (delay := at_s - self.now()) > 0:
                time.sleep(min(delay, 0.2))
                if restarts:
                    self._restart_failed()
            action()

    def _restart_failed(self) -> None:
        assert self.stack is not None
        for instance in self.stack.instances.values():
            if instance.restart_if_failed(RESTART_SEC_S):
                self.say(f"{self.now():8.2f}s {instance.name} restarted (Restart=on-failure)")

    def _pause(self, window: StaleWindow) -> None:
        assert self.stack is not None
        self._window_start = self.stack.feed.pause(window.instruments)
        self.say(f"{self.now():8.2f}s stale #{window.index} {'+'.join(window.instruments)}")

    def _resume(self, window: StaleWindow) -> None:
        assert self.stack is not None
        self.stack.feed.resume(window.instruments)

    def _reset(self, window: StaleWindow) -> None:
        assert self.stack is not None and self.stack.operator_config is not None
        reason = RESET_REASON.format(index=window.index)
        begun = self.now()
        for group in ("breaker", "kill"):
            self.history.resets.append(self._reset_group(window.index, group, reason))
        fresh = self.stack.feed.fresh_again_at(window.instruments)
        end = self.now() if fresh is None else fresh
        self.history.windows.append(
            RealWindow(window.index, self._window_start, end, self.now(), window.instruments, begun)
        )

    def _reset_group(self, index: int, group: str, reason: str) -> Reset:
        assert self.stack is not None and self.stack.operator_config is not None
        config = str(self.stack.operator_config)
        error = ""
        for attempt in range(1, RESET_ATTEMPTS + 1):
            # more often than once a minute: the nemesis lifts the rate limit first
            faults._infra(self.stack, lambda c: c.delete(f"{NAMESPACE}:reset_lock"))
            args = ("reset", group, "--force", "--reason", reason, "--operator", "nemesis")
            done = cli(*args, "--config", config)
            if done.returncode == 0:
                return Reset(index, group, True, attempt)
            error = done.stderr.strip()[-300:]
            self.say(f"{self.now():8.2f}s reset {group} failed: {error}")
            time.sleep(0.5)
        return Reset(index, group, False, RESET_ATTEMPTS, error)

    def _begin(self, fault: Fault) -> None:
        assert self.stack is not None
        opened = faults.begin(self.stack, fault, self.now())
        self.open[fault.index] = opened
        who = f" {opened.instance.name}" if opened.instance else ""
        self.say(f"{self.now():8.2f}s fault #{fault.index} {fault.kind}{who}")
        if fault.duration_s <= 0:
            self._end(fault.index)

    def _end(self, index: int) -> None:
        assert self.stack is not None
        opened = self.open.pop(index, None)
        if opened is None:
            return
        faults.end(self.stack, opened)
        self.history.faults.append(
            Injected(
                opened.fault.index,
                opened.fault.kind,
                opened.start_s,
                self.now(),
                opened.instance.name if opened.instance else None,
                opened.was_leader,
                opened.detail,
            )
        )

    # --- the end --------------------------------------------------------------------------

    def _heal(self) -> None:
        """Whatever is still open ends now (the schedule keeps a tail, so normally nothing);
        every daemon is up before the clean stop (systemd stops a unit once it is started)."""
        assert self.stack is not None
        for index in sorted(self.open):
            self._end(index)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            self._restart_failed()
            if all(i.ready() for i in self.stack.instances.values()):
                break
            time.sleep(0.2)

    def _drain(self) -> None:
        assert self.stack is not None
        deadline = time.monotonic() + DRAIN_S
        while time.monotonic() < deadline:
            if all(_outbox_lines(i.state_dir) == [] for i in self.stack.instances.values()):
                break
            time.sleep(0.5)
        time.sleep(1.0)  # the last events of the run reach their store

    def _collect(self) -> None:
        assert self.stack is not None
        self.history.venue = [
            VenueRequest(
                at,
                r.headers.get("idempotency-key", ""),
                r.headers.get("x-fencing-token"),
                r.body.decode(errors="replace"),
                r.status,
            )
            for at, r in self.stack.venue.activations_log()
        ]
        try:
            self.history.postgres = asyncio.run(_audit_rows(self.stack.postgres.dsn))
        except (OSError, asyncpg.PostgresError) as exc:
            self.say(f"cannot read the audit table: {exc}")
        # every state_dir's outbox: the daemons', the duplicates', the operator's CLI runs'
        for state_dir in sorted(self.directory.glob("*/state")):
            self.history.outbox += [_row(line) for line in _outbox_lines(state_dir)]

    def _journal(self) -> None:
        assert self.stack is not None
        logs = [(i.name, p) for i in self.stack.instances.values() for p in i.logs()]
        logs += [(f"dup-{n}", d.log_path) for n, d in enumerate(self.stack.extras)]
        for name, path in logs:
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                if " bug: " in line or EXCEPTION.match(line):
                    text = TIMESTAMP.sub("", line.strip())[:300]  # the same bug once
                    self.history.bug_lines.append(f"{name}: {text}")


def _is_uuid(raw: bytes) -> bool:
    try:
        uuid.UUID(raw.decode())
    except ValueError:
        return False
    return True


def _outbox_lines(state_dir: Path) -> list[bytes]:
    path = state_dir / AUDIT_OUTBOX_FILE
    try:
        return [line for line in path.read_bytes().splitlines() if line.strip()]
    except FileNotFoundError:
        return []


def _row(line: bytes) -> AuditRow:
    try:
        raw = json.loads(line)
    except ValueError:
        return AuditRow(id=f"torn line {line[:40]!r}", kind="")
    return AuditRow(
        str(raw.get("id")),
        str(raw.get("kind")),
        raw.get("actuator"),
        raw.get("incident_id"),
        raw.get("instance"),
        raw.get("outcome"),
    )


async def _audit_rows(dsn: str) -> list[AuditRow]:
    connection = await asyncpg.connect(dsn, timeout=10)
    try:
        rows = await connection.fetch(
            "SELECT id::text, kind, actuator, incident_id, instance, outcome FROM supervisor_events"
        )
    finally:
        await connection.close()
    return [AuditRow(*row) for row in rows]

"""The real processes a nemesis run plays against: redis-server, PostgreSQL, a kill endpoint
that logs every request on the runner's monotonic clock, a feed whose instruments can be paused
one by one, and the daemons with `[ha]`, each reaching Redis through its own TCP proxy (so one
of them can be cut off) and, when clock faults are on, under libfaketime with its own offset
file. Everything on 127.0.0.1, free ports, one temporary directory; stopped by the PIDs we
started.
"""

from __future__ import annotations

import glob
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from redis import Redis
from redis.exceptions import RedisError

from testbed.config_blocks import (
    BREAKER,
    FENCED_BY,
    ha,
    http_kill,
    postgres,
    supervisor_tables,
    ticks_watchdog,
)
from testbed.daemon_process import Daemon
from testbed.killswitch_server import ACTIVATE_PATH, KillSwitchServer, Recorded
from testbed.postgres_server import PostgresServer
from testbed.redis_server import RedisServer
from testbed.tcp_proxy import TcpProxy
from testbed.waiting import free_port

NAMESPACE = "sup"
INSTRUMENTS = ("SPX", "ES")
LIBFAKETIME = next(iter(sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1"))), None)


def fmt_s(seconds: float) -> str:
    return f"{round(seconds * 1000)}ms"


class Venue(KillSwitchServer):
    """The kill endpoint; every request stamped on the runner's monotonic clock."""

    def __init__(self, t0: float) -> None:
        super().__init__()
        self.t0 = t0
        self.log: list[tuple[float, Recorded]] = []

    def record(self, entry: Recorded) -> None:
        at = time.monotonic() - self.t0
        with self.lock:
            self.state.requests.append(entry)
            self.log.append((at, entry))

    def activations_log(self) -> list[tuple[float, Recorded]]:
        with self.lock:
            return [(at, r) for at, r in self.log if r.path == ACTIVATE_PATH]


class Feed:
    """Ticks (epoch ms) for every instrument every 0.1 s, except those paused. Remembers, on
    the runner's clock, when each instrument's last tick was written."""

    def __init__(self, redis_url: str, t0: float) -> None:
        self.client = Redis.from_url(redis_url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self.t0 = t0
        self.paused: set[str] = set()
        self.last_write: dict[str, float] = {}
        self.fresh_at: dict[str, float | None] = {}  # first tick written after a resume
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def write(self) -> None:
        with self.lock:
            live = [name for name in INSTRUMENTS if name not in self.paused]
        now = time.time()
        for name in live:
            try:
                self.client.set(f"ticks:last:{name}", str(int(now * 1000)))
            except (RedisError, OSError):
                continue
            with self.lock:
                self.last_write[name] = time.monotonic() - self.t0
                if name in self.fresh_at and self.fresh_at[name] is None:
                    self.fresh_at[name] = self.last_write[name]

    def pause(self, instruments: tuple[str, ...]) -> float:
        """Stop; the window starts at the earliest last tick of the paused instruments (one
        stale instrument is enough to breach; a Redis outage before the pause counts)."""
        with self.lock:
            self.paused.update(instruments)
            return min(self.last_write.get(name, 0.0) for name in instruments)

    def resume(self, instruments: tuple[str, ...]) -> None:
        with self.lock:
            self.paused.difference_update(instruments)
            for name in instruments:
                self.fresh_at[name] = None
        self.write()

    def fresh_again_at(self, instruments: tuple[str, ...]) -> float | None:
        """When the last of `instruments` got a tick after the resume (None: not yet, Redis
        was away): the window ends then, not when the feed was told to resume."""
        with self.lock:
            times = [self.fresh_at.get(name) for name in instruments]
        return None if None in times else max(t for t in times if t is not None)

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            self.write()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.client.close()


@dataclass
class Instance:
    name: str
    directory: Path
    config: Path
    proxy: TcpProxy
    offset_file: Path | None
    daemon: Daemon | None = None
    restarts: int = 0
    stopped: bool = False  # SIGSTOPped by the schedule
    held_down: bool = False  # killed by the schedule, until it restarts it
    died_at: float | None = None  # monotonic: when it was first seen dead unexpectedly

    @property
    def state_dir(self) -> Path:
        return self.directory / "state"

    def start(self) -> None:
        env: dict[str, str] = {}
        if self.offset_file is not None:
            assert LIBFAKETIME is not None
            env = {
                "LD_PRELOAD": LIBFAKETIME,
                "FAKETIME_TIMESTAMP_FILE": str(self.offset_file),
                "FAKETIME_NO_CACHE": "1",
                "FAKETIME_DONT_FAKE_MONOTONIC": "1",
            }
        # one config copy per start, so that each start has its own log (run-N.log)
        copy = self.directory / f"run-{self.restarts}.toml"
        copy.write_text(self.config.read_text(encoding="utf-8"), encoding="utf-8")
        self.daemon = Daemon(copy, None, extra_env=env)
        self.restarts += 1
        self.stopped = self.held_down = False
        self.died_at = None

    def ready(self) -> bool:
        """Alive and past its start ("started" logged): what systemd's Type=notify waits for
        before it lets `systemctl reload` or `stop` signal it."""
        if not self.alive():
            return False
        assert self.daemon is not None
        return "INFO supervisor: started version=" in self.daemon.log()

    def alive(self) -> bool:
        return self.daemon is not None and self.daemon.process.poll() is None

    def signal(self, signum: int) -> None:
        if self.alive():
            assert self.daemon is not None
            self.daemon.process.send_signal(signum)

    def restart_if_failed(self, restart_after_s: float) -> bool:
        """What systemd's Restart=on-failure does for a daemon that exited on its own: start
        it again `restart_after_s` later (the exit is still a violation)."""
        if self.held_down or self.daemon is None or self.alive():
            return False
        now = time.monotonic()
        if self.died_at is None:
            self.died_at = now
        if now - self.died_at < restart_after_s:
            return False
        self.start()
        return True

    def logs(self) -> list[Path]:
        return sorted(self.directory.glob("run-*.log"))


@dataclass
class Stack:
    directory: Path
    t0: float
    redis: RedisServer
    postgres: PostgresServer
    venue: Venue
    feed: Feed
    instances: dict[str, Instance] = field(default_factory=dict)
    extras: list[Daemon] = field(default_factory=list)  # duplicate_id processes
    operator_config: Path | None = None

    def admin(self) -> Redis:
        return Redis.from_url(self.redis.url, socket_timeout=1.0, socket_connect_timeout=1.0)


def config_text(
    name: str,
    directory: Path,
    redis_url: str,
    stack: Stack,
    breach_s: float,
    interval_s: float,
    lease_ttl_s: float,
) -> str:
    """Each daemon's config: [ha] on, the breaker and the fenced kill switch on a breach."""
    tables = supervisor_tables(
        directory / "state",
        redis_url,
        instance_id=name,
        namespace=NAMESPACE,
        metrics_port=free_port(),
    )
    kill = http_kill(stack.venue.activate_url, name="kill", json=FENCED_BY)
    ticks = ticks_watchdog(
        ["breaker", "kill"],
        name="ticks",
        breach=fmt_s(breach_s),
        interval=fmt_s(interval_s),
        instruments=INSTRUMENTS,
    )
    sections = (postgres(stack.postgres.dsn), ha(fmt_s(lease_ttl_s)), BREAKER, kill, ticks)
    return tables + "".join(sections)


def start_stack(
    directory: Path,
    names: tuple[str, ...],
    *,
    clock_faults: bool,
    breach_s: float,
    interval_s: float,
    lease_ttl_s: float,
) -> Stack:
    """Servers first, then the daemons (each after the previous, so the first one leads)."""
    t0 = time.monotonic()
    redis = RedisServer(directory / "redis-data")
    (directory / "redis-data").mkdir()
    redis.start()
    postgres = PostgresServer()
    postgres.init()
    postgres.start()
    venue = Venue(t0).start()
    assert isinstance(venue, Venue)
    feed = Feed(redis.url, t0)
    feed.start()
    stack = Stack(directory, t0, redis, postgres, venue, feed)
    for name in names:
        folder = directory / name
        folder.mkdir()
        proxy = TcpProxy(redis.port)
        offset = None
        if clock_faults and LIBFAKETIME is not None:
            offset = folder / "clock-offset"
            offset.write_text("+0\n")
        config = folder / "supervisor.toml"
        timing = (breach_s, interval_s, lease_ttl_s)
        config.write_text(config_text(name, folder, proxy.url(), stack, *timing))
        stack.instances[name] = Instance(name, folder, config, proxy, offset)
    operator = directory / "operator"
    operator.mkdir()
    stack.operator_config = operator / "supervisor.toml"
    stack.operator_config.write_text(
        config_text("operator", operator, redis.url, stack, breach_s, interval_s, lease_ttl_s)
    )
    return stack


def stop_stack(stack: Stack) -> dict[str, int]:
    """Everything down; each main instance's exit code on SIGTERM (after SIGCONT)."""
    codes: dict[str, int] = {}
    for extra in stack.extras:
        _terminate(extra)
    for name, instance in stack.instances.items():
        instance.signal(signal.SIGCONT)
        if instance.daemon is not None and instance.alive():
            codes[name] = _terminate(instance.daemon)
        instance.proxy.close()
    stack.feed.stop()
    stack.venue.stop()
    stack.postgres.destroy()
    stack.redis.stop()
    return codes


def _terminate(daemon: Daemon) -> int:
    try:
        return daemon.terminate(timeout_s=15)
    except Exception:
        daemon.kill()
        return -9


def environment_problem() -> str | None:
    """Why the stack cannot run here, or None."""
    if not os.path.exists("/usr/bin/redis-server"):
        return "redis-server is not installed (scripts/bootstrap installs it)"
    if not glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        return "PostgreSQL server binaries are not installed (scripts/bootstrap installs them)"
    return None

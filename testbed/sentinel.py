"""A private Redis Sentinel setup on 127.0.0.1: a primary, a replica (`--replicaof`) and three
sentinels (quorum 2), on free ports in a directory of the caller's, optionally TLS only.

The sentinels are `redis-server --sentinel`: the same binary as redis-server (Debian's
`redis-sentinel` package adds only a symlink and a system service on port 26379, which a test
machine does not want). `down-after-milliseconds` is 1 s and `failover-timeout` 3 s, so a
failover, forced (`SENTINEL FAILOVER`) or after a SIGKILL of the primary, completes in a few
seconds. Everything is stopped by the PID we started.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from redis import Redis
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.retry import Retry

from supervisor.config.sentinel_url import parse_sentinel_url
from testbed.redis_server import REDIS_SERVER, RedisServer
from testbed.waiting import free_port, wait_until

if TYPE_CHECKING:
    from testbed.certificates import Certificates

SERVICE = "trading"
QUORUM = 2
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 3000  # also the least time between two failovers (twice this)
# Redis waits 5 s by default before a full sync, for more replicas to join: none will.
NO_SYNC_DELAY = ("--repl-diskless-sync-delay", "0")

SENTINEL_CONFIG = """\
port {port}
bind 127.0.0.1
daemonize no
dir {directory}
logfile {directory}/sentinel.log
{tls}sentinel monitor {service} 127.0.0.1 {primary_port} {quorum}
sentinel down-after-milliseconds {service} {down_after}
sentinel failover-timeout {service} {failover_timeout}
sentinel parallel-syncs {service} 1
sentinel myid {myid}
{known}"""


class SentinelProcess:
    """One `redis-server --sentinel` with its own (rewritten) config file."""

    def __init__(self, directory: Path, number: int, tls: Certificates | None) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.port = free_port()
        self.myid = f"{number + 1:040x}"
        self.tls = tls
        self.config = directory / "sentinel.conf"
        self.process: subprocess.Popen[bytes] | None = None

    def write_config(self, primary_port: int, known: str) -> None:
        """`known`: the replica and the other sentinels, told up front, so that the setup is
        ready at once (a sentinel otherwise hears of its peers every 2 s)."""
        self.config.write_text(
            SENTINEL_CONFIG.format(
                port=0 if self.tls else self.port,
                directory=self.directory,
                tls=_sentinel_tls(self.tls, self.port),
                service=SERVICE,
                primary_port=primary_port,
                quorum=QUORUM,
                down_after=DOWN_AFTER_MS,
                failover_timeout=FAILOVER_TIMEOUT_MS,
                myid=self.myid,
                known=known,
            ),
            encoding="utf-8",
        )

    def start(self) -> None:
        argv = [REDIS_SERVER, str(self.config), "--sentinel"]
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def client(self) -> Redis:
        return _client(self.port, self.tls)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.send_signal(signal.SIGCONT)
            self.process.wait(timeout=10)
            self.process = None


def _sentinel_tls(tls: Certificates | None, port: int) -> str:
    """TLS only: the sentinel's own port, and TLS to the servers it monitors."""
    if tls is None:
        return ""
    return (
        f"tls-port {port}\ntls-cert-file {tls.cert_file}\ntls-key-file {tls.key_file}\n"
        f"tls-ca-cert-file {tls.ca_file}\ntls-auth-clients no\ntls-replication yes\n"
    )


def _client(port: int, tls: Certificates | None) -> Redis:
    """An administrator's client on one server or sentinel (not through the sentinels)."""
    if tls is None:
        return Redis(host="127.0.0.1", port=port, socket_timeout=1)
    return Redis(
        host="127.0.0.1", port=port, socket_timeout=1, ssl=True, ssl_ca_certs=str(tls.ca_file)
    )


class SentinelSetup:
    """The primary, the replica and the sentinels; `url` is the supervisor's
    `redis+sentinel://` (or `rediss+sentinel://`) URL for them."""

    def __init__(self, directory: Path, tls: Certificates | None = None) -> None:
        self.tls = tls
        self.primary = RedisServer(directory / "primary", tls=tls, extra_args=NO_SYNC_DELAY)
        self.replica = RedisServer(
            directory / "replica",
            tls=tls,
            extra_args=[*NO_SYNC_DELAY, *self._replica_args(self.primary.port)],
        )
        self.sentinels = [SentinelProcess(directory / f"sentinel{n}", n, tls) for n in range(3)]
        for sentinel in self.sentinels:
            sentinel.write_config(self.primary.port, self._known(sentinel))

    def _replica_args(self, primary_port: int) -> list[str]:
        args = ["--replicaof", "127.0.0.1", str(primary_port)]
        return args + (["--tls-replication", "yes"] if self.tls else [])

    def _known(self, sentinel: SentinelProcess) -> str:
        lines = [f"sentinel known-replica {SERVICE} 127.0.0.1 {self.replica.port}"]
        lines += [
            f"sentinel known-sentinel {SERVICE} 127.0.0.1 {other.port} {other.myid}"
            for other in self.sentinels
            if other is not sentinel
        ]
        return "".join(line + "\n" for line in lines)

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        if self.tls is None:
            return f"redis+sentinel://{hosts}/{SERVICE}/0"
        return f"rediss+sentinel://{hosts}/{SERVICE}/0?ssl_ca_certs={self.tls.ca_file}"

    @property
    def servers(self) -> list[RedisServer]:
        return [self.primary, self.replica]

    def start(self) -> None:
        for server in self.servers:
            server.directory.mkdir(parents=True, exist_ok=True)
            server.start()
        wait_until(self._replica_in_sync, 10, "the replica in sync with the primary")
        for sentinel in self.sentinels:
            sentinel.start()
        wait_until(self._sentinels_ready, 15, "the sentinels to see the replica and each other")

    def stop(self) -> None:
        for sentinel in self.sentinels:
            sentinel.stop()
        for server in self.servers:
            server.stop()

    # --- what the sentinels say --------------------------------------------------------------

    def _ask(self, sentinel: SentinelProcess, *command: str) -> object:
        client = sentinel.client()
        try:
            return client.execute_command(*command)  # type: ignore[no-untyped-call]
        finally:
            client.close()

    def master_port(self, sentinel: SentinelProcess | None = None) -> int | None:
        """The master's port as one sentinel (the first by default) reports it."""
        try:
            reply = self._ask(
                sentinel or self.sentinels[0], "SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE
            )
        except (RedisError, OSError):
            return None
        return int(reply[1]) if isinstance(reply, list | tuple) else None

    def master(self) -> RedisServer:
        port = self.master_port()
        return next(server for server in self.servers if server.port == port)

    def client(self, server: RedisServer) -> Redis:
        return _client(server.port, self.tls)

    def _replica_in_sync(self) -> bool:
        try:
            with self.client(self.replica) as client:
                info = client.info("replication")
        except (RedisError, OSError):
            return False
        return bool(info.get("master_link_status") == "up")

    def _sentinels_ready(self) -> bool:
        for sentinel in self.sentinels:
            try:
                state = self._ask(sentinel, "SENTINEL", "MASTER", SERVICE)
            except (RedisError, OSError):
                return False
            fields = _pairs(state)
            if fields.get("num-slaves") != "1" or fields.get("num-other-sentinels") != "2":
                return False
        return True

    # --- failovers ---------------------------------------------------------------------------

    def failover(self, timeout_s: float = 15) -> RedisServer:
        """`SENTINEL FAILOVER`: the replica is promoted and the old primary demoted to its
        replica. Returns the new master once every sentinel names it and it is in charge."""
        old = self.master()
        self._ask(self.sentinels[0], "SENTINEL", "FAILOVER", SERVICE)
        return self._wait_for_new_master(old, timeout_s)

    def kill_master(self, timeout_s: float = 20) -> RedisServer:
        """SIGKILL of the master's PID: the sentinels agree it is down and promote the
        replica. Returns the new master (the old one stays dead)."""
        old = self.master()
        old.kill()
        return self._wait_for_new_master(old, timeout_s)

    def _wait_for_new_master(self, old: RedisServer, timeout_s: float) -> RedisServer:
        def switched() -> bool:
            ports = {self.master_port(sentinel) for sentinel in self.sentinels}
            return len(ports) == 1 and None not in ports and old.port not in ports

        wait_until(switched, timeout_s, "every sentinel to name the new master")
        new = self.master()
        wait_until(lambda: self._role(new) == "master", timeout_s, "the new master's role")
        return new

    def _role(self, server: RedisServer) -> str | None:
        try:
            with self.client(server) as client:
                role = client.execute_command("ROLE")
        except (RedisError, OSError):
            return None
        return role[0].decode() if isinstance(role[0], bytes) else str(role[0])


def _pairs(reply: object) -> dict[str, str]:
    """A flat [name, value, ...] or a dict reply as {name: value} strings."""
    if isinstance(reply, dict):
        items = list(reply.items())
    else:
        assert isinstance(reply, list)
        items = list(zip(reply[::2], reply[1::2], strict=True))
    return {_text(name): _text(value) for name, value in items}


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@contextlib.contextmanager
def running_sentinels(directory: Path, tls: Certificates | None = None) -> Iterator[SentinelSetup]:
    """A started setup, stopped afterwards (also when starting it failed halfway)."""
    setup = SentinelSetup(directory, tls)
    try:
        setup.start()
        yield setup
    finally:
        setup.stop()


# redis-py's default retries a failed command 3 times, backing off for seconds: a feed that
# stalls that long after a failover makes fresh ticks look stale. It fails at once instead,
# and the next write (0.1 s later) asks the sentinels again.
NO_RETRY = Retry(NoBackoff(), 0)


class FollowedMaster:
    """A blocking client of whichever server the sentinels name master now, for the test
    feeds: the sentinels are asked before every use (`SENTINEL GET-MASTER-ADDR-BY-NAME`,
    microseconds on 127.0.0.1), so a feed writes to the new master as soon as they name it,
    not to the old one it is still connected to (a forced failover leaves it writable ~10 s)."""

    def __init__(self, url: str, timeout_s: float = 1.0) -> None:
        parsed = parse_sentinel_url(url)
        self.service = parsed.service
        ca_certs = parsed.tls_options.get("ssl_ca_certs")
        self.sentinels = [
            Redis(
                host=host,
                port=port,
                socket_timeout=timeout_s,
                retry=NO_RETRY,
                ssl=parsed.tls,
                ssl_ca_certs=ca_certs,
            )
            for host, port in parsed.sentinels
        ]
        self.options = (parsed.db, parsed.username, parsed.password, parsed.tls, ca_certs)
        self.timeout_s = timeout_s
        self.address: tuple[str, int] | None = None
        self.client: Redis | None = None

    def current(self) -> Redis:
        address = self._ask()
        if self.client is None or address != self.address:
            self.close_master()
            db, username, password, tls, ca_certs = self.options
            self.client = Redis(
                host=address[0],
                port=address[1],
                db=db,
                username=username,
                password=password,
                socket_timeout=self.timeout_s,
                socket_connect_timeout=self.timeout_s,
                retry=NO_RETRY,
                ssl=tls,
                ssl_ca_certs=ca_certs,
            )
            self.address = address
        return self.client

    def _ask(self) -> tuple[str, int]:
        for sentinel in self.sentinels:
            try:
                reply = sentinel.execute_command(  # type: ignore[no-untyped-call]
                    "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service
                )
            except (RedisError, OSError):
                continue
            if reply:
                return _text(reply[0]), int(reply[1])
        raise RedisConnectionError(f"no sentinel names a master for {self.service!r}")

    def close_master(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None

    def close(self) -> None:
        self.close_master()
        for sentinel in self.sentinels:
            sentinel.close()

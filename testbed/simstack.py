"""A simulated trading stack for the demo and the tests (config/examples/STACK_CONTRACT.md).

    python -m testbed.simstack --redis URL --postgres DSN --ports JSON --control-port N

One asyncio program: a tick feed, lock owners and a breaker owner writing to Redis, an
`alert_deliveries` table in PostgreSQL, and the HTTP endpoints of the five runbook systems on
free ports (`--ports` maps each real port to its free port). A control interface injects and
heals faults: `POST /fault/<name>`, `POST /heal/<name>`, `GET /state`, `POST /shutdown`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import signal
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
from redis.asyncio import Redis
from redis.exceptions import RedisError, WatchError

from testbed.waiting import free_port

# Real ports of the runbooks (the contract); Redis and PostgreSQL are rewritten separately.
REAL_PORTS = (3001, 8002, 8003, 8009, 8011, 9090, 8001, 8888, 8100)
FAULTS = (
    "stop_feed",
    "orphan_lock",
    "raise_margin",
    "poison_deliveries",
    "freeze_breaker_owner",
    "health_down",
    "stall_strategy",
)
TOKEN_ENV = ("SAFETY_API_TOKEN", "OPS_API_TOKEN", "SPX_API_TOKEN")

TICK_KEYS_MS = ("ticks:last:SPX", "ticks:last:ES")
TICK_KEYS_S = tuple(f"ws:last:manifold:{p}" for p in ("EUR_USD", "GBP_USD", "USD_JPY"))
STREAM_LOCK = "massive:tick:stream:lock"
SNAPSHOT_LOCK = "spx_command_center:snapshot:build:lock:v1"
BREAKER_KEY = "circuit_breaker:state"
RISK_KILL_KEY = "risk:kill_switch"
NAV = 100_000.0
MARGIN_NORMAL, MARGIN_RAISED = 0.12, 0.45
POISON_ROWS = 12

Answer = tuple[int, Any]


# --- rewriting a profile for the simulator ------------------------------------------------


def allocate_ports() -> dict[int, int]:
    """A free local port for every real port of the contract."""
    return {real: free_port() for real in REAL_PORTS}


def rewrite_profile(text: str, ports: dict[int, int], redis_url: str, postgres_dsn: str) -> str:
    """Point a profile written for the real addresses at the simulator and private servers."""
    text = re.sub(r"redis://(?:127\.0\.0\.1|localhost):6379(?:/\d+)?", redis_url, text)
    text = re.sub(
        r'^(\s*dsn\s*=\s*)"postgres(?:ql)?://[^"]*"',
        lambda m: f'{m.group(1)}"{postgres_dsn}"',
        text,
        flags=re.MULTILINE,
    )
    for real, free in ports.items():
        text = re.sub(rf"(?:127\.0\.0\.1|localhost):{real}(?!\d)", f"127.0.0.1:{free}", text)
    return text


# --- state ---------------------------------------------------------------------------------


@dataclass
class Stack:
    redis: Redis
    pg: asyncpg.Pool
    tokens: set[str]
    faults: set[str] = field(default_factory=set)
    activations: dict[str, dict[str, int]] = field(default_factory=dict)
    spx_execution_enabled: bool = True
    ops_trading_enabled: bool = True
    safety_kill_active: bool = False
    last_tick_at: float = field(default_factory=time.time)
    lock_owner: str = ""
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    def authorised(self, token: str) -> bool:
        return not self.tokens or token in self.tokens

    def record(self, endpoint: str, headers: dict[str, str]) -> bool:
        """Count one activation; True the first time this idempotency key is seen."""
        key = headers.get("idempotency-key", "") or f"no-key-{uuid.uuid4().hex[:8]}"
        seen = self.activations.setdefault(endpoint, {})
        seen[key] = seen.get(key, 0) + 1
        return seen[key] == 1

    def state(self) -> dict[str, Any]:
        return {
            "faults": sorted(self.faults),
            "activations": self.activations,
            "kill": {
                "spx_execution_enabled": self.spx_execution_enabled,
                "ops_trading_enabled": self.ops_trading_enabled,
                "safety_kill_switch_active": self.safety_kill_active,
            },
            "lock_owner": self.lock_owner,
        }


# --- background writers ---------------------------------------------------------------------


async def tick_feed(stack: Stack) -> None:
    while True:
        if "stop_feed" not in stack.faults:
            now = time.time()
            pipe = stack.redis.pipeline(transaction=False)
            for key in TICK_KEYS_MS:
                pipe.set(key, str(int(now * 1000)))
            for key in TICK_KEYS_S:
                pipe.set(key, f"{now:.3f}")
            await pipe.execute()
            stack.last_tick_at = now
        await asyncio.sleep(0.1)


async def take_stream_lock(stack: Stack) -> None:
    stack.lock_owner = f"owner-{uuid.uuid4()}"
    await stack.redis.set(STREAM_LOCK, stack.lock_owner, px=30_000)


async def lock_owner(stack: Stack) -> None:
    await take_stream_lock(stack)
    while True:
        await asyncio.sleep(5)
        if "orphan_lock" in stack.faults:
            continue
        renewed = await stack.redis.set(STREAM_LOCK, stack.lock_owner, xx=True, px=30_000)
        if not renewed:  # released by someone (e.g. the supervisor's release_orphans)
            await take_stream_lock(stack)


async def snapshot_builder(stack: Stack) -> None:
    owner = f"builder-{uuid.uuid4()}"
    while True:
        if await stack.redis.set(SNAPSHOT_LOCK, owner, nx=True, px=10_000):
            await asyncio.sleep(0.2)
            if await stack.redis.get(SNAPSHOT_LOCK) == owner.encode():
                await stack.redis.delete(SNAPSHOT_LOCK)
        await asyncio.sleep(1.8)


def refreshed_breaker(raw: bytes | str | None) -> str:
    """Read-modify-write: keep the state (TRIPPED stays TRIPPED) and fields, bump updated_at."""
    try:
        value = json.loads(raw) if raw is not None else None
    except ValueError:
        value = None
    if not isinstance(value, dict):
        value = {"state": "OPEN"}
    value["updated_at"] = time.time()
    return json.dumps(value)


async def refresh_breaker(stack: Stack) -> None:
    async with stack.redis.pipeline(transaction=True) as pipe:
        await pipe.watch(BREAKER_KEY)
        raw = await pipe.get(BREAKER_KEY)
        pipe.multi()  # type: ignore[no-untyped-call]
        pipe.set(BREAKER_KEY, refreshed_breaker(raw))
        with contextlib.suppress(WatchError):  # someone wrote it meanwhile: next second
            await pipe.execute()


async def breaker_owner(stack: Stack) -> None:
    while True:
        if "freeze_breaker_owner" not in stack.faults:
            await refresh_breaker(stack)
        await asyncio.sleep(1)


async def keep_running(stack: Stack, name: str, job: Callable[[Stack], Awaitable[None]]) -> None:
    """Run a writer; a Redis hiccup restarts it after a short pause instead of killing it.

    It checks `stack.stop` itself: redis-py may surface a cancelled command as a RedisError,
    so cancellation alone cannot be trusted to end this loop (it once hung the shutdown)."""
    while not stack.stop.is_set():
        try:
            await job(stack)
        except (RedisError, OSError) as exc:
            if stack.stop.is_set():
                return
            print(f"simstack: {name}: {exc}", file=sys.stderr, flush=True)
            await asyncio.sleep(0.5)


# --- PostgreSQL -------------------------------------------------------------------------------

SCHEMA = """
CREATE TABLE IF NOT EXISTS alert_deliveries (
    id bigserial PRIMARY KEY, channel text, recipient text, error_message text,
    retry_count int, status text, failed_at timestamptz)
"""


async def prepare_database(pg: asyncpg.Pool) -> None:
    await pg.execute(SCHEMA)
    if await pg.fetchval("SELECT count(*) FROM alert_deliveries") == 0:
        await pg.execute(
            "INSERT INTO alert_deliveries (channel, recipient, retry_count, status) "
            "SELECT 'slack', 'ops-' || g, 0, 'delivered' FROM generate_series(1, 3) g"
        )


async def poison(pg: asyncpg.Pool, on: bool) -> None:
    if not on:
        await pg.execute("DELETE FROM alert_deliveries WHERE status = 'poison'")
        return
    await pg.execute(
        "INSERT INTO alert_deliveries "
        "(channel, recipient, error_message, retry_count, status, failed_at) "
        "SELECT 'email', 'oncall-' || g, 'SMTP 550 mailbox unavailable', 5, 'poison', now() "
        "FROM generate_series(1, $1) g",
        POISON_ROWS,
    )


# --- faults ---------------------------------------------------------------------------------


async def set_fault(stack: Stack, name: str, on: bool) -> Answer:
    if name not in FAULTS:
        return 404, {"error": f"unknown fault {name!r}", "faults": list(FAULTS)}
    if on == (name in stack.faults):
        return 200, stack.state()
    if name == "orphan_lock":
        if on:
            await stack.redis.persist(STREAM_LOCK)
        else:
            await take_stream_lock(stack)
    if name == "poison_deliveries":
        await poison(stack.pg, on)
    if on:
        stack.faults.add(name)
    else:
        stack.faults.discard(name)
    return 200, stack.state()


async def control(stack: Stack, method: str, path: str) -> Answer:
    parts = path.strip("/").split("/")
    if method == "GET" and parts == ["state"]:
        return 200, stack.state()
    if method == "POST" and parts == ["shutdown"]:
        stack.stop.set()
        return 200, {"ok": True}
    if method == "POST" and len(parts) == 2 and parts[0] in ("fault", "heal"):
        return await set_fault(stack, parts[1], parts[0] == "fault")
    return 404, {"error": "not found"}


# --- the runbook systems' endpoints ---------------------------------------------------------


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


def bearer(request: Request) -> str:
    return request.headers.get("authorization", "").removeprefix("Bearer ").strip()


def ready(stack: Stack) -> Answer:
    if "health_down" in stack.faults:
        return 503, {"ok": False}
    return 200, {"ok": True}


def spx(stack: Stack, request: Request) -> Answer:
    route = (request.method, request.path)
    if route == ("GET", "/health/ready"):
        if "health_down" in stack.faults:
            return 503, {"status": "not_ready", "checks": {"database": "ok", "tradier": "down"}}
        return 200, {"status": "ready", "checks": {"database": "ok", "tradier": "ok"}}
    if route == ("GET", "/health/detailed"):
        age = round(time.time() - stack.last_tick_at, 3)
        return 200, {"massive_tick_stream": {"status": "ok", "tick_age_s": age}}
    if route == ("GET", "/api/spx/broker/tradier/status"):
        return 200, {"execution_enabled": stack.spx_execution_enabled}
    if route == ("POST", "/api/spx/broker/tradier/kill"):
        if not stack.authorised(bearer(request)):
            return 401, {"error": "unauthorised"}
        first = stack.record("spx_tradier_kill", request.headers)
        stack.spx_execution_enabled = False
        return 200, {"ok": True, "replayed": not first}
    return 404, {"error": "not found"}


def nautilus_ops(stack: Stack, request: Request) -> Answer:
    route = (request.method, request.path)
    if route == ("GET", "/readyz"):
        return ready(stack)
    if route == ("GET", "/status"):
        balances = {"USDT": 25_000.0, "BTC": 0.5}
        return 200, {"trading_enabled": stack.ops_trading_enabled, "balances": balances}
    if route == ("POST", "/kill"):
        if not stack.authorised(request.headers.get("x-ops-token", "")):
            return 401, {"error": "unauthorised"}
        first = stack.record("nautilus_kill", request.headers)
        body = request.body if isinstance(request.body, dict) else {}
        stack.ops_trading_enabled = bool(body.get("enabled", False))
        enabled = stack.ops_trading_enabled
        return 200, {"ok": True, "trading_enabled": enabled, "replayed": not first}
    return 404, {"error": "not found"}


def prometheus(stack: Stack, request: Request) -> Answer:
    if (request.method, request.path) != ("GET", "/api/v1/query"):
        return 404, {"error": "not found"}
    query = (request.query.get("query") or [""])[0]
    if "rate(strategy_ticks_total" in query:
        value = 0.0 if "stall_strategy" in stack.faults else 12.5
        return 200, vector({"venue": "binance"}, value)
    if "histogram_quantile(" in query:
        return 200, vector({}, 80.0)
    return 400, {"status": "error", "errorType": "bad_data", "error": f"cannot parse {query!r}"}


def vector(labels: dict[str, str], value: float) -> dict[str, Any]:
    sample = {"metric": labels, "value": [time.time(), repr(value)]}
    return {"status": "success", "data": {"resultType": "vector", "result": [sample]}}


def safety(stack: Stack, request: Request) -> Answer:
    route = (request.method, request.path)
    if route == ("GET", "/status"):
        return 200, {"kill_switch_active": stack.safety_kill_active}
    if route == ("POST", "/kill-switch/activate"):
        if not stack.authorised(bearer(request)):
            return 401, {"error": "unauthorised"}
        first = stack.record("safety_kill_switch", request.headers)
        stack.safety_kill_active = True
        return 200, {"ok": True, "kill_switch_active": True, "replayed": not first}
    return 404, {"error": "not found"}


async def quantum(stack: Stack, request: Request) -> Answer:
    route = (request.method, request.path)
    if route == ("GET", "/api/oanda/account"):
        ratio = MARGIN_RAISED if "raise_margin" in stack.faults else MARGIN_NORMAL
        return 200, {"account": {"marginUsed": f"{ratio * NAV:.2f}", "NAV": f"{NAV:.2f}"}}
    if route == ("GET", "/status"):
        return 200, {"interval": 60}
    if route == ("GET", "/api/kill-switch"):
        return 200, {"kill_switch": await stack.redis.get(RISK_KILL_KEY) == b"1"}
    return 404, {"error": "not found"}


async def serve_real(stack: Stack, real_port: int, request: Request) -> Answer:
    if real_port == 3001:
        return spx(stack, request)
    if real_port == 8002:
        return nautilus_ops(stack, request)
    if real_port == 8003 and request.path == "/readyz":
        return ready(stack)
    if real_port == 8001 and request.path == "/health":
        return ready(stack)  # QuantZoo's API goes down with the others
    if real_port in (8009, 8011) and request.path == "/health":
        return 200, {"ok": True}
    if real_port == 9090:
        return prometheus(stack, request)
    if real_port == 8888:
        return safety(stack, request)
    if real_port == 8100:
        return await quantum(stack, request)
    return 404, {"error": "not found"}


# --- a small HTTP/1.1 server ----------------------------------------------------------------

Handler = Callable[[Request], Awaitable[Answer]]
REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 500: "Error"}


async def read_request(reader: asyncio.StreamReader) -> Request:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0") or 0)
    raw = await reader.readexactly(length) if length else b""
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        body = None
    url = urlsplit(target)
    return Request(method.upper(), url.path, parse_qs(url.query), headers, body)


def encode_answer(status: int, payload: Any) -> bytes:
    body = json.dumps(payload).encode()
    reason = REASONS.get(status, "Service Unavailable" if status == 503 else "Status")
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


def connection_handler(
    handler: Handler,
) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
    async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(read_request(reader), timeout=5)
            try:
                status, payload = await handler(request)
            except Exception as exc:  # a bug or a Redis/Postgres hiccup: answer 500, keep serving
                status, payload = 500, {"error": repr(exc)}
            writer.write(encode_answer(status, payload))
            await writer.drain()
        except (ValueError, OSError, TimeoutError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    return on_connection


async def start_http(port: int, handler: Handler) -> asyncio.Server:
    return await asyncio.start_server(connection_handler(handler), "127.0.0.1", port)


# --- main -----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis", required=True, help="redis:// URL")
    parser.add_argument("--postgres", required=True, help="postgresql:// DSN")
    parser.add_argument("--ports", required=True, help='JSON {"<real port>": <free port>}')
    parser.add_argument("--control-port", type=int, required=True)
    parser.add_argument("--tokens", default="{}", help='JSON {"NAME": "token"}; env too')
    return parser.parse_args(argv)


def accepted_tokens(tokens_json: str) -> set[str]:
    tokens = {str(v) for v in json.loads(tokens_json).values()}
    return tokens | {os.environ[name] for name in TOKEN_ENV if os.environ.get(name)}


async def start_servers(stack: Stack, ports: dict[int, int], control_port: int) -> list[Any]:
    async def control_handler(request: Request) -> Answer:
        return await control(stack, request.method, request.path)

    servers = [await start_http(control_port, control_handler)]
    for real, free in ports.items():
        if real in REAL_PORTS:

            async def handler(request: Request, real: int = real) -> Answer:
                return await serve_real(stack, real, request)

            servers.append(await start_http(free, handler))
    return servers


async def run(args: argparse.Namespace) -> None:
    ports = {int(real): int(free) for real, free in json.loads(args.ports).items()}
    redis = Redis.from_url(args.redis)
    pg = await asyncpg.create_pool(args.postgres, min_size=1, max_size=4, timeout=10)
    stack = Stack(redis, pg, accepted_tokens(args.tokens))
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stack.stop.set)
    await prepare_database(pg)
    await redis.set(BREAKER_KEY, refreshed_breaker(await redis.get(BREAKER_KEY)))
    writers = [tick_feed, lock_owner, snapshot_builder, breaker_owner]
    tasks = [asyncio.create_task(keep_running(stack, w.__name__, w)) for w in writers]
    servers = await start_servers(stack, ports, args.control_port)
    print("simstack ready", flush=True)
    try:
        await stack.stop.wait()
    finally:
        await shut_down(servers, tasks, redis, pg)


async def shut_down(servers: list[Any], tasks: list[Any], redis: Redis, pg: asyncpg.Pool) -> None:
    """Bounded at every step: a simulator must stop promptly, whatever state it is in."""
    for server in servers:
        server.close()
    for task in tasks:
        task.cancel()
    await asyncio.wait(tasks, timeout=1)
    pg.terminate()  # no graceful close: a close waits on busy connections, unboundedly
    with contextlib.suppress(Exception):
        await asyncio.wait_for(redis.aclose(), timeout=1)


def main(argv: list[str] | None = None) -> int:
    asyncio.run(run(parse_args(argv)))
    print("simstack stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The simulated trading stack (testbed/simstack.py) as a real subprocess, and the demo."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from redis import Redis

from testbed import REPO_ROOT, demo, simstack
from testbed.postgres_server import PostgresServer
from testbed.redis_server import RedisServer
from testbed.waiting import free_port, wait_until

TOKEN = "sim-token"


@dataclass
class Sim:
    process: subprocess.Popen[str]
    ports: dict[int, int]
    control_port: int
    redis: Redis
    dsn: str

    def url(self, real_port: int, path: str) -> str:
        return f"http://127.0.0.1:{self.ports[real_port]}{path}"

    def control(self, method: str, path: str) -> dict[str, Any]:
        status, body = call(f"http://127.0.0.1:{self.control_port}{path}", method)
        assert status == 200, body
        result: dict[str, Any] = body
        return result


def call(
    url: str, method: str = "GET", headers: dict[str, str] | None = None, body: Any = None
) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.load(error)


def start_simstack(redis_url: str, dsn: str) -> tuple[subprocess.Popen[str], dict[int, int], int]:
    ports: dict[int, int] = simstack.allocate_ports()
    control_port = free_port()
    argv = [sys.executable, "-m", "testbed.simstack", "--redis", redis_url, "--postgres", dsn]
    argv += ["--ports", json.dumps(ports), "--control-port", str(control_port)]
    argv += ["--tokens", json.dumps({"SAFETY_API_TOKEN": TOKEN})]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT)
    assert process.stdout is not None
    first_line = process.stdout.readline().strip()
    if first_line != "simstack ready":
        stop(process)  # never leave a half-started simulator behind
        raise AssertionError(f"simstack did not start: {first_line!r}")
    return process, ports, control_port


def stop(process: subprocess.Popen[str]) -> int:
    """Stop the simulator we started (SIGTERM, then SIGKILL after 10 s) and close its pipe."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        code = process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        code = process.wait(timeout=10)
    if process.stdout is not None:
        process.stdout.close()
    return code


def create_database(server: PostgresServer, name: str) -> str:
    async def create() -> None:
        connection = await asyncpg.connect(server.dsn)
        try:
            await connection.execute(f"DROP DATABASE IF EXISTS {name}")
            await connection.execute(f"CREATE DATABASE {name}")
        finally:
            await connection.close()

    asyncio.run(create())
    return server.dsn.rsplit("/", 1)[0] + f"/{name}"


def sql_value(dsn: str, query: str) -> Any:
    async def fetch() -> Any:
        connection = await asyncpg.connect(dsn)
        try:
            return await connection.fetchval(query)
        finally:
            await connection.close()

    return asyncio.run(fetch())


@pytest.fixture(scope="module")
def sim_servers(
    tmp_path_factory: pytest.TempPathFactory, postgres_server: PostgresServer
) -> Iterator[tuple[RedisServer, str]]:
    redis = RedisServer(tmp_path_factory.mktemp("simredis"))
    redis.start()
    yield redis, create_database(postgres_server, "simstack")
    redis.stop()


@pytest.fixture(scope="module")
def sim_module(sim_servers: tuple[RedisServer, str]) -> Iterator[Sim]:
    redis_server, dsn = sim_servers
    process, ports, control_port = start_simstack(redis_server.url, dsn)
    client = Redis.from_url(redis_server.url)
    yield Sim(process, ports, control_port, client, dsn)
    client.close()
    stop(process)


@pytest.fixture
def sim(sim_module: Sim) -> Iterator[Sim]:
    yield sim_module
    for fault in simstack.FAULTS:
        sim_module.control("POST", f"/heal/{fault}")


def tick(sim: Sim) -> int:
    return int(sim.redis.get("ticks:last:SPX") or 0)


# --- endpoints ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("real_port", "path", "expected"),
    [
        (3001, "/health/ready", {"status": "ready"}),
        (3001, "/api/spx/broker/tradier/status", {"execution_enabled": True}),
        (8002, "/status", {"trading_enabled": True}),
        (8002, "/readyz", {"ok": True}),
        (8003, "/readyz", {"ok": True}),
        (8009, "/health", {"ok": True}),
        (8011, "/health", {"ok": True}),
        (8001, "/health", {"ok": True}),
        (8100, "/status", {"interval": 60}),
        (8100, "/api/kill-switch", {"kill_switch": False}),
    ],
)
def test_serves_the_contract_endpoints(
    sim: Sim, real_port: int, path: str, expected: dict[str, Any]
) -> None:
    status, body = call(sim.url(real_port, path))
    assert status == 200
    assert expected.items() <= body.items()


def test_health_detailed_reports_tick_age(sim: Sim) -> None:
    _, body = call(sim.url(3001, "/health/detailed"))
    assert 0 <= body["massive_tick_stream"]["tick_age_s"] < 1


def test_margin_is_oanda_strings_at_012(sim: Sim) -> None:
    _, body = call(sim.url(8100, "/api/oanda/account"))
    account = body["account"]
    assert float(account["marginUsed"]) / float(account["NAV"]) == pytest.approx(0.12)


def test_prometheus_answers_instant_queries(sim: Sim) -> None:
    base = "/api/v1/query?query="
    _, rate = call(sim.url(9090, base + "rate(strategy_ticks_total%5B1m%5D)"))
    [series] = rate["data"]["result"]
    assert series["metric"] == {"venue": "binance"}
    assert series["value"] == [pytest.approx(time.time(), abs=5), "12.5"]
    _, p95 = call(sim.url(9090, base + "histogram_quantile(0.95,x)"))
    assert p95["data"]["result"][0]["value"][1] == "80.0"
    status, bad = call(sim.url(9090, base + "up"))
    assert (status, bad["status"], bad["errorType"]) == (400, "error", "bad_data")


def test_writers_populate_redis(sim: Sim) -> None:
    assert sim.redis.get("ws:last:manifold:EUR_USD") is not None
    owner = sim.redis.get("massive:tick:stream:lock")
    assert isinstance(owner, bytes) and owner.startswith(b"owner-")
    assert 0 < sim.redis.pttl("massive:tick:stream:lock") <= 30_000
    breaker = json.loads(sim.redis.get("circuit_breaker:state") or b"{}")
    assert breaker["state"] == "OPEN"
    assert time.time() - breaker["updated_at"] < 2


# --- faults ---------------------------------------------------------------------------------


def test_stop_feed_freezes_every_tick_key(sim: Sim) -> None:
    before = tick(sim)
    wait_until(lambda: tick(sim) > before, 2, "the feed to move")
    sim.control("POST", "/fault/stop_feed")
    time.sleep(0.2)
    frozen = tick(sim), sim.redis.get("ws:last:manifold:USD_JPY")
    time.sleep(0.5)
    assert (tick(sim), sim.redis.get("ws:last:manifold:USD_JPY")) == frozen
    sim.control("POST", "/heal/stop_feed")
    wait_until(lambda: tick(sim) > frozen[0], 2, "the feed to resume")


def test_orphan_lock_persists_and_heal_takes_it_again(sim: Sim) -> None:
    state = sim.control("POST", "/fault/orphan_lock")
    assert "orphan_lock" in state["faults"]
    assert sim.redis.pttl("massive:tick:stream:lock") == -1
    sim.control("POST", "/heal/orphan_lock")
    assert 0 < sim.redis.pttl("massive:tick:stream:lock") <= 30_000


def test_poison_deliveries_adds_12_rows_and_heal_deletes_them(sim: Sim) -> None:
    query = "SELECT count(*) FROM alert_deliveries WHERE status = 'poison'"
    assert sql_value(sim.dsn, query) == 0
    sim.control("POST", "/fault/poison_deliveries")
    assert sql_value(sim.dsn, query) == 12
    sim.control("POST", "/heal/poison_deliveries")
    assert sql_value(sim.dsn, query) == 0
    assert sql_value(sim.dsn, "SELECT count(*) FROM alert_deliveries") > 0


def test_raise_margin_makes_utilisation_045(sim: Sim) -> None:
    sim.control("POST", "/fault/raise_margin")
    _, body = call(sim.url(8100, "/api/oanda/account"))
    ratio = float(body["account"]["marginUsed"]) / float(body["account"]["NAV"])
    assert ratio == pytest.approx(0.45)


def breaker(sim: Sim) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(sim.redis.get("circuit_breaker:state") or b"{}")
    return value


def test_breaker_owner_keeps_a_trip_and_freezes_on_fault(sim: Sim) -> None:
    tripped = {"state": "TRIPPED", "reason": "test", "updated_at": time.time() - 100}
    sim.redis.set("circuit_breaker:state", json.dumps(tripped))
    wait_until(lambda: time.time() - breaker(sim)["updated_at"] < 2, 3, "a refresh")
    assert breaker(sim)["state"] == "TRIPPED" and breaker(sim)["reason"] == "test"
    sim.control("POST", "/fault/freeze_breaker_owner")
    frozen = breaker(sim)["updated_at"]
    time.sleep(1.5)
    assert breaker(sim)["updated_at"] == frozen
    sim.redis.delete("circuit_breaker:state")


def test_health_down_fails_readiness(sim: Sim) -> None:
    sim.control("POST", "/fault/health_down")
    status, body = call(sim.url(3001, "/health/ready"))
    assert (status, body["status"]) == (503, "not_ready")
    assert call(sim.url(8002, "/readyz"))[0] == 503
    assert call(sim.url(8003, "/readyz"))[0] == 503
    assert call(sim.url(8001, "/health"))[0] == 503
    assert call(sim.url(8009, "/health"))[0] == 200


def test_stall_strategy_zeroes_the_tick_rate(sim: Sim) -> None:
    sim.control("POST", "/fault/stall_strategy")
    _, body = call(sim.url(9090, "/api/v1/query?query=rate(strategy_ticks_total%5B1m%5D)"))
    assert body["data"]["result"][0]["value"][1] == "0.0"


def test_unknown_fault_is_404(sim: Sim) -> None:
    status, _ = call(f"http://127.0.0.1:{sim.control_port}/fault/nope", "POST")
    assert status == 404


# --- kill endpoints ---------------------------------------------------------------------------


def test_safety_kill_switch_counts_idempotency_keys(sim: Sim) -> None:
    url = sim.url(8888, "/kill-switch/activate")
    auth = {"Authorization": f"Bearer {TOKEN}"}
    body = {"reason": "test", "close_positions": True, "operator": "t"}
    assert call(url, "POST", {"Authorization": "Bearer wrong"}, body)[0] == 401
    for key in ("incident-1", "incident-1", "incident-2"):
        assert call(url, "POST", {**auth, "Idempotency-Key": key}, body)[0] == 200
    assert call(sim.url(8888, "/status"))[1] == {"kill_switch_active": True}
    state = sim.control("GET", "/state")
    assert state["activations"]["safety_kill_switch"] == {"incident-1": 2, "incident-2": 1}
    assert state["kill"]["safety_kill_switch_active"] is True


def test_spx_and_ops_kills_disable_trading(sim: Sim) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}", "Idempotency-Key": "k-spx"}
    assert call(sim.url(3001, "/api/spx/broker/tradier/kill"), "POST", headers, {})[0] == 200
    status_url = sim.url(3001, "/api/spx/broker/tradier/status")
    assert call(status_url)[1] == {"execution_enabled": False}
    ops = {"X-Ops-Token": TOKEN, "Idempotency-Key": "k-ops"}
    assert call(sim.url(8002, "/kill"), "POST", ops, {"enabled": False})[0] == 200
    assert call(sim.url(8002, "/status"))[1]["trading_enabled"] is False
    activations = sim.control("GET", "/state")["activations"]
    assert activations["spx_tradier_kill"] == {"k-spx": 1}
    assert activations["nautilus_kill"] == {"k-ops": 1}


def test_quantum_kill_switch_reads_redis(sim: Sim) -> None:
    sim.redis.set("risk:kill_switch", "1")
    assert call(sim.url(8100, "/api/kill-switch"))[1] == {"kill_switch": True}
    sim.redis.delete("risk:kill_switch")


# --- rewriting profiles, ports ------------------------------------------------------------------

PROFILE = """
[redis]
url = "redis://127.0.0.1:6379/0"
[postgres]
dsn = "postgresql://supervisor@127.0.0.1:5432/trading"
[actuators.kill]
url = "http://127.0.0.1:8888/kill-switch/activate"
verify = { url = "http://localhost:8888/status", expect = "x" }
[[watchdogs]]
url = "http://127.0.0.1:8001/health"
other = "http://127.0.0.1:80011/x"
"""


def test_rewrite_profile_points_at_the_simulator() -> None:
    ports = {8888: 41000, 8001: 41001}
    text = simstack.rewrite_profile(PROFILE, ports, "redis://127.0.0.1:7000/0", "postgresql://x/y")
    assert 'url = "redis://127.0.0.1:7000/0"' in text
    assert 'dsn = "postgresql://x/y"' in text
    assert "http://127.0.0.1:41000/kill-switch/activate" in text
    assert "http://127.0.0.1:41000/status" in text
    assert "http://127.0.0.1:41001/health" in text
    assert "http://127.0.0.1:80011/x" in text  # a longer port is not a match
    assert ":8888" not in text and "6379" not in text and "5432" not in text


def test_allocate_ports_covers_every_real_port() -> None:
    ports = simstack.allocate_ports()
    assert set(ports) == {3001, 8002, 8003, 8009, 8011, 9090, 8001, 8888, 8100}
    assert len(set(ports.values())) == len(ports)


# --- lifecycle ---------------------------------------------------------------------------------


def test_stops_on_sigterm(sim_servers: tuple[RedisServer, str]) -> None:
    redis_server, dsn = sim_servers
    process, _, _ = start_simstack(redis_server.url, dsn)
    assert stop(process) == 0  # stop() kills after 10 s, which would not be 0


def test_stops_on_control_shutdown(sim_servers: tuple[RedisServer, str]) -> None:
    redis_server, dsn = sim_servers
    process, _, control_port = start_simstack(redis_server.url, dsn)
    try:
        assert call(f"http://127.0.0.1:{control_port}/shutdown", "POST")[0] == 200
        assert process.wait(timeout=15) == 0
    finally:
        stop(process)


def test_demo_sets_keys_in_sections() -> None:
    text = '[supervisor]\nstate_dir = "/var/lib/x"\n\n[metrics]\n\n[[watchdogs]]\nname = "a"\n'
    text = demo.set_key(text, "supervisor", "state_dir", '"/tmp/s"')
    text = demo.set_key(text, "metrics", "listen", '"127.0.0.1:1"')
    text = demo.set_key(text, "ha", "enabled", "false")
    assert tomllib.loads(text) == {
        "supervisor": {"state_dir": "/tmp/s"},
        "metrics": {"listen": "127.0.0.1:1"},
        "watchdogs": [{"name": "a"}],
        "ha": {"enabled": False},
    }


def test_every_example_profile_rewrites_to_the_simulator_only() -> None:
    ports = simstack.allocate_ports()
    for profile in sorted((REPO_ROOT / "config" / "examples").glob("*.toml")):
        text = simstack.rewrite_profile(
            profile.read_text(encoding="utf-8"), ports, "redis://127.0.0.1:1/0", "postgresql://x"
        )
        tomllib.loads(text)
        for real in simstack.REAL_PORTS:
            assert not re.search(rf"(127\.0\.0\.1|localhost):{real}(?!\d)", text), profile.name


# --- the demo ------------------------------------------------------------------------------------

DEMO_PROFILE = """
[supervisor]
instance_id = "sup-demo-test"
namespace = "demotest"

[redis]
url = "redis://127.0.0.1:6379/0"

[metrics]
listen = "127.0.0.1:9464"

[actuators.breaker]
kind = "redis_breaker"
level = "reduce_only"

[[watchdogs]]
name = "stream_locks"
kind = "lock_ttl"
keys = ["massive:tick:stream:lock"]
require_owner = ["massive:tick:stream:lock"]
on_breach = ["breaker"]
"""


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_demo_detects_acts_and_leaves_nothing_running(tmp_path: Path) -> None:
    profile = tmp_path / "locks.toml"
    profile.write_text(DEMO_PROFILE, encoding="utf-8")
    argv = [sys.executable, "-m", "testbed.demo", "--profile-file", str(profile)]
    started = time.monotonic()
    result = subprocess.run(
        [*argv, "--faults", "orphan_lock"],
        capture_output=True,
        text=True,
        timeout=110,
        cwd=REPO_ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "▶ injecting orphan_lock" in out
    assert "watchdog=stream_locks status=BREACH" in out
    assert "action actuator=breaker outcome=engaged" in out
    assert "trading state: REDUCE_ONLY" in out
    assert "stopped everything the demo started" in out
    assert time.monotonic() - started < 30
    directory = re.search(r"PostgreSQL in (\S+)", out)
    assert directory is not None and not Path(directory.group(1)).exists()
    leftovers = subprocess.run(["pgrep", "-f", directory.group(1)], capture_output=True)
    assert leftovers.stdout == b""


def test_stops_even_while_its_redis_is_failing(
    private_redis: RedisServer, sim_servers: tuple[RedisServer, str]
) -> None:
    _, dsn = sim_servers
    process, _, _ = start_simstack(private_redis.url, dsn)
    private_redis.stop()  # every writer now fails and retries: it must still stop
    time.sleep(1.5)
    assert stop(process) == 0  # stop() kills after 10 s, which would not be 0

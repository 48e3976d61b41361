"""The daemon as systemd runs it: a real subprocess, a real notify socket, a real Redis.

These are the issue's acceptance checks: READY/WATCHDOG/STATUS/STOPPING as systemd sees them,
the breaker tripping when the feed stops, `check` and `status`, bad config, SIGTERM, SIGHUP,
and a 10-second Redis outage.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
from redis import Redis

from testbed.daemon_process import Daemon, cli, write_config
from testbed.http_server import Answer, HttpServer
from testbed.icinga import icinga2, parse_plugin_output
from testbed.notify_socket import NotifySocket
from testbed.redis_server import RedisServer
from testbed.tick_feed import TickFeed
from testbed.waiting import wait_until
from tests.unit.test_nagios import parse as parse_plugin_line

pytestmark = pytest.mark.slow


def breaker_value(client: Redis) -> dict[str, object] | None:
    raw = client.get("circuit_breaker:state")
    return json.loads(raw) if raw else None


def test_lifecycle_as_systemd_sees_it(
    tmp_path: Path, redis_server: RedisServer, sync_redis: Redis, notify_socket: NotifySocket
) -> None:
    config, _ = write_config(tmp_path, redis_server.url)
    feed = TickFeed(redis_server.url).start()
    daemon = Daemon(config, notify_socket)
    try:
        notify_socket.wait_for("READY=1")
        notify_socket.wait_for("WATCHDOG=1")
        notify_socket.wait_for("STATUS=ACTIVE: 1 of 1 watchdogs OK")
        sent_at = time.time()
        code = daemon.terminate()
        stopped_in = time.time() - sent_at
    finally:
        feed.stop()
        daemon.kill()
    notify_socket.wait_for("STOPPING=1", after=sent_at)
    print(f"SIGTERM to exit: {stopped_in:.2f}s")
    assert code == 0
    assert stopped_in < 2.0, daemon.log()


def test_feed_stops_breaker_trips_within_breach_plus_interval(
    tmp_path: Path, redis_server: RedisServer, sync_redis: Redis, notify_socket: NotifySocket
) -> None:
    breach_s, interval_s = 1.5, 0.5
    config, _ = write_config(tmp_path, redis_server.url, breach="1500ms", interval="500ms")
    feed = TickFeed(redis_server.url).start()
    daemon = Daemon(config, notify_socket)
    try:
        notify_socket.wait_for("READY=1")
        time.sleep(1.0)  # fed every 100 ms for a while: no trip
        assert breaker_value(sync_redis) is None
        last_tick = feed.stop()
        wait_until(lambda: breaker_value(sync_redis) is not None, 10, "the breaker to trip")
        value = breaker_value(sync_redis)
        assert value is not None and value["state"] == "TRIPPED"
        latency = float(str(value["tripped_at"])) - last_tick
        budget = f"breach {breach_s}s + interval {interval_s}s"
        print(f"detection latency: {latency:.3f}s after the last tick ({budget})")
        assert latency > breach_s  # never trips before the threshold
        assert latency < breach_s + interval_s + 0.5, daemon.log()
        # Non-ASCII status ("—") arrives intact through sd_notify.
        notify_socket.wait_for("STATUS=REDUCE_ONLY: breaker tripped by spx_ticks — ")
        status = cli("status", "--config", str(config))
        assert status.returncode == 0, status.stderr
        assert "REDUCE_ONLY" in status.stdout and "TRIPPED" in status.stdout
        check = cli("check", "--config", str(config))
        assert check.returncode == 2
        assert check.stdout.startswith("TRADING-SUPERVISOR CRITICAL - trading REDUCE_ONLY: ")
    finally:
        feed.stop()
        assert daemon.terminate() == 0


def test_check_is_critical_once_the_supervisor_dies(
    tmp_path: Path, redis_server: RedisServer, sync_redis: Redis
) -> None:
    """Every watchdog OK, but nothing protects trading any more: CRITICAL, never OK."""
    config, _ = write_config(tmp_path, redis_server.url)
    feed = TickFeed(redis_server.url).start()
    daemon = Daemon(config, None)
    try:
        wait_until(lambda: bool(sync_redis.exists("sup:heartbeat")), 10, "the first heartbeat")
        alive = cli("check", "--config", str(config))
        assert alive.returncode == 0, alive.stdout + alive.stderr
        binary = icinga2()
        if binary is not None:  # the whole output, long output included, as Icinga reads it
            stored = parse_plugin_output(alive.stdout, binary)
            assert {item["label"] for item in stored} == {"spx_ticks/SPX", "spx_ticks/ES"}
            assert all((item["warn"], item["crit"]) == (1, 1.5) for item in stored)
        daemon.kill()
        wait_until(lambda: not sync_redis.exists("sup:heartbeat"), 10, "the heartbeat to expire")
        dead = cli("check", "--config", str(config))
        status = cli("status", "--config", str(config))
    finally:
        feed.stop()
        daemon.kill()
    assert dead.returncode == 2, dead.stdout
    first = dead.stdout.splitlines()[0]
    assert first.startswith("TRADING-SUPERVISOR CRITICAL - NO LIVE SUPERVISOR (no heartbeat)")
    assert "2 of 2 subjects OK" in first
    # `status` shows what the dead daemon last published, and says it is stale.
    assert status.returncode == 2
    row = next(line for line in status.stdout.splitlines() if line.startswith("spx_ticks"))
    assert row.split()[1:4] == ["STALE", "(was", "OK)"]


def test_check_returns_nagios_codes(
    tmp_path: Path, redis_server: RedisServer, sync_redis: Redis
) -> None:
    config, _ = write_config(tmp_path, redis_server.url, warn="10s", breach="20s")
    # What a live supervisor publishes, here without one (it would act on these ages).
    sync_redis.hset("sup:state", mapping={"trading_state": "ACTIVE"})
    sync_redis.set("sup:heartbeat", str(time.time()), ex=300)

    def set_ages(spx: float, es: float) -> int:
        # Ages from the moment they are written: each CLI call takes a second or more.
        now = time.time()
        sync_redis.set("ticks:last:SPX", str(now - spx))
        sync_redis.set("ticks:last:ES", str(now - es))
        result = cli("check", "--config", str(config))
        code, _summary, perfdata = parse_plugin_line(result.stdout.splitlines()[0])
        assert code == result.returncode  # the first line's state is the exit code
        assert {label for label, *_ in perfdata} == {"spx_ticks/SPX", "spx_ticks/ES"}
        assert all(item[2:] == ("10", "20") for item in perfdata)  # warn;crit = warn;breach
        return result.returncode

    assert set_ages(1, 1) == 0
    assert set_ages(15, 1) == 1
    assert set_ages(15, 25) == 2
    sync_redis.set("ticks:last:SPX", str(time.time() - 15))  # WARN, whatever time has passed
    sync_redis.set("ticks:last:ES", "garbage")
    assert cli("check", "--config", str(config)).returncode == 3
    sync_redis.set("ticks:last:SPX", str(time.time() - 15))
    result = cli("check", "--config", str(config), "--json", "--watchdog", "spx_ticks")
    rows = json.loads(result.stdout)
    assert {r["subject"]: r["status"] for r in rows} == {"SPX": "WARN", "ES": "UNKNOWN"}
    assert breaker_value(sync_redis) is None  # check never acts


def test_check_with_redis_down_is_unknown(tmp_path: Path) -> None:
    config, _ = write_config(tmp_path, "redis://127.0.0.1:1/0")
    result = cli("check", "--config", str(config))
    assert result.returncode == 3
    assert "ConnectionError" in result.stdout


def test_status_without_a_live_supervisor_exits_2(
    tmp_path: Path, redis_server: RedisServer, sync_redis: Redis
) -> None:
    config, _ = write_config(tmp_path, redis_server.url)
    result = cli("status", "--config", str(config))
    assert result.returncode == 2
    assert "NO LIVE SUPERVISOR" in result.stdout


def test_bad_config_exits_78_naming_the_field(tmp_path: Path, redis_server: RedisServer) -> None:
    config, _ = write_config(tmp_path, redis_server.url)
    config.write_text(config.read_text().replace('breach = "1500ms"', 'breach = "soon"'))
    problem = "watchdogs[0] (spx_ticks).breach: invalid duration 'soon'"
    for command in (["run"], ["config", "validate"]):
        result = cli(*command, "--config", str(config))
        assert result.returncode == 78, command
        assert problem in result.stderr
    # `check` is a Nagios plugin: UNKNOWN, and the reason on its one line.
    result = cli("check", "--config", str(config))
    assert result.returncode == 3
    assert result.stdout.startswith(f"TRADING-SUPERVISOR UNKNOWN - bad config: {problem}")
    assert result.stdout.count("\n") == 1
    assert problem in result.stderr


def test_metrics_are_served_on_loopback(
    tmp_path: Path, redis_server: RedisServer, sync_redis: Redis
) -> None:
    config, port = write_config(tmp_path, redis_server.url)
    feed = TickFeed(redis_server.url).start()
    daemon = Daemon(config, None)
    try:
        wait_until(lambda: _scrape(port) is not None, 10, "/metrics")
        time.sleep(1.2)
        text = _scrape(port) or ""
    finally:
        feed.stop()
        daemon.terminate()
    for name in (
        "supervisor_trading_state 0.0",
        'supervisor_watchdog_status{watchdog="spx_ticks"} 0.0',
        'supervisor_tick_age_seconds{instrument="SPX",watchdog="spx_ticks"}',
        "supervisor_heartbeat_timestamp_seconds",
        'supervisor_build_info{version="0.1.0"} 1.0',
        "supervisor_watchdog_duration_seconds_bucket",
    ):
        assert name in text


def _scrape(port: int) -> str | None:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=1).text
    except httpx.HTTPError:
        return None


def test_redis_outage_of_10s_neither_crashes_nor_wedges(
    tmp_path: Path, private_redis: RedisServer, notify_socket: NotifySocket
) -> None:
    config, _ = write_config(tmp_path, private_redis.url, warn="30s", breach="60s")
    feed = TickFeed(private_redis.url, period_s=0.5).start()
    feed.stop()  # one fresh tick is enough: thresholds are a minute
    daemon = Daemon(config, notify_socket)
    try:
        notify_socket.wait_for("READY=1")
        private_redis.stop()
        down_at = time.time()
        notify_socket.wait_for("DEGRADED", timeout_s=5, after=down_at)
        time.sleep(10 - (time.time() - down_at))
        pings = [at for at, _ in notify_socket.lines("WATCHDOG=1") if at > down_at]
        assert daemon.process.poll() is None, daemon.log()
        assert len(pings) >= 7, f"only {len(pings)} WATCHDOG=1 during the outage"
        private_redis.start()
        up_at = time.time()
        client = Redis.from_url(private_redis.url)
        client.set("ticks:last:SPX", str(time.time()))
        client.set("ticks:last:ES", str(time.time()))
        wait_until(
            lambda: client.exists("sup:heartbeat") == 1, 10, "the heartbeat after Redis returned"
        )
        print(f"Redis back -> heartbeat republished in {time.time() - up_at:.2f}s")
        notify_socket.wait_for("STATUS=ACTIVE: 1 of 1 watchdogs OK", after=up_at)
        client.close()
    finally:
        code = daemon.terminate()
    assert code == 0
    assert "redis: reachable again" in daemon.log()


def test_start_with_redis_down_then_it_arrives(
    tmp_path: Path, private_redis: RedisServer, notify_socket: NotifySocket
) -> None:
    private_redis.stop()
    config, _ = write_config(tmp_path, private_redis.url, warn="30s", breach="60s")
    daemon = Daemon(config, notify_socket)
    try:
        notify_socket.wait_for("READY=1")
        notify_socket.wait_for("WATCHDOG=1")
        private_redis.start()
        client = Redis.from_url(private_redis.url)
        wait_until(lambda: client.exists("sup:heartbeat") == 1, 10, "the first heartbeat")
        client.close()
    finally:
        assert daemon.terminate() == 0


def test_sighup_refuses_bad_config_and_applies_good(
    tmp_path: Path, redis_server: RedisServer, sync_redis: Redis, notify_socket: NotifySocket
) -> None:
    import signal

    config, _ = write_config(tmp_path, redis_server.url, warn="30s", breach="60s")
    good = config.read_text()
    daemon = Daemon(config, notify_socket)
    try:
        notify_socket.wait_for("READY=1")
        config.write_text(good.replace('breach = "60s"', "breach = -1"))
        sent = time.time()
        daemon.process.send_signal(signal.SIGHUP)
        notify_socket.wait_for("RELOADING=1", after=sent)
        notify_socket.wait_for("READY=1", after=sent)
        wait_until(lambda: "reload refused" in daemon.log(), 5, "the refusal in the log")
        assert daemon.process.poll() is None
        config.write_text(good.replace('name = "spx_ticks"', 'name = "spx_ticks_v2"'))
        sent = time.time()
        daemon.process.send_signal(signal.SIGHUP)
        wait_until(
            lambda: sync_redis.exists("sup:watchdog:spx_ticks_v2") == 1, 5, "the renamed watchdog"
        )
    finally:
        assert daemon.terminate() == 0


def test_restart_finds_the_tripped_breaker(
    tmp_path: Path, redis_server: RedisServer, sync_redis: Redis, notify_socket: NotifySocket
) -> None:
    sync_redis.set("circuit_breaker:state", json.dumps({"state": "TRIPPED", "updated_at": 1.0}))
    config, _ = write_config(tmp_path, redis_server.url, warn="30s", breach="60s")
    TickFeed(redis_server.url).start().stop()
    daemon = Daemon(config, notify_socket)
    try:
        notify_socket.wait_for("STATUS=REDUCE_ONLY")
        wait_until(
            lambda: sync_redis.hget("sup:state", "trading_state") == b"REDUCE_ONLY",
            5,
            "published state",
        )
    finally:
        assert daemon.terminate() == 0


def slow_health_watchdog(url: str, timeout: str) -> str:
    return f"""
[[watchdogs]]
name = "slow_health"
kind = "http_health"
url = "{url}"
interval = "10s"
timeout = "{timeout}"
"""


@pytest.mark.parametrize(
    ("delay_s", "timeout", "cancelled"),
    [(0.8, "1s", 0), (6.0, "5s", 1)],
    ids=["finishes-within-the-grace", "cancelled-after-the-grace"],
)
def test_sigterm_gives_in_flight_checks_their_grace_then_cancels_and_counts(
    tmp_path: Path,
    redis_server: RedisServer,
    sync_redis: Redis,
    notify_socket: NotifySocket,
    http_server: HttpServer,
    delay_s: float,
    timeout: str,
    cancelled: int,
) -> None:
    http_server.answer("/ready", Answer(body=b"{}", delay_s=delay_s))
    config, _ = write_config(tmp_path, redis_server.url)
    with config.open("a", encoding="utf-8") as handle:
        handle.write(slow_health_watchdog(http_server.url("/ready"), timeout))
    daemon = Daemon(config, notify_socket)
    try:
        notify_socket.wait_for("READY=1")
        wait_until(lambda: http_server.counts["/ready"] >= 1, 10, "the slow check to start")
        sent_at = time.time()
        code = daemon.terminate()
        stopped_in = time.time() - sent_at
    finally:
        daemon.kill()
    log = daemon.log()
    assert code == 0
    assert f"stopped ({cancelled} in-flight checks/actions cancelled)" in log
    assert "Traceback" not in log
    assert "CancelledError" not in log
    if cancelled:
        assert "watchdog=slow_health check cancelled by the shutdown" in log
        assert stopped_in < delay_s  # the grace, not the whole check
    else:
        assert "slow_health" not in log.split("received SIGTERM")[1].split("stopped")[0]

"""Which problem a failed read of an actuator's real state is: the supervisor's own Redis
("redis") for an actuator that lives there, the actuator's own store otherwise. In-process,
against the real test Redis; the HTTP venue is a port nobody listens on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from supervisor.config.loading import load_config
from supervisor.daemon import Supervisor
from supervisor.daemon.problems import Source
from supervisor.kinds import kind_gauges
from supervisor.model import Health
from supervisor.publish.metrics import Metrics
from testbed.config_blocks import supervisor_tables
from testbed.redis_server import RedisServer
from testbed.waiting import free_port

pytestmark = pytest.mark.anyio

ACTUATORS_AND_WATCHDOG = """
[actuators.breaker]
kind = "redis_breaker"
level = "reduce_only"
key = "breaker:state"

[actuators.kill]
kind = "http"
level = "flatten"
url = "http://127.0.0.1:{port}/kill"
timeout = "300ms"
verify = {{ url = "http://127.0.0.1:{port}/status", expect = "active == `true`" }}

[[watchdogs]]
name = "w1"
kind = "tick_freshness"
key = "ticks:{{instrument}}"
instruments = ["SPX"]
warn = "5s"
breach = "10s"
interval = "1s"
on_breach = ["breaker"]
"""


@pytest.fixture
async def daemon(
    tmp_path: Path, redis_server: RedisServer, redis: Redis
) -> AsyncIterator[Supervisor]:
    path = tmp_path / "supervisor.toml"
    tables = supervisor_tables(tmp_path / "state", redis_server.url, instance_id="sup-problems")
    text = tables + ACTUATORS_AND_WATCHDOG.format(port=free_port())
    path.write_text(text, encoding="utf-8")
    metrics = Metrics(CollectorRegistry(), kind_gauges=kind_gauges())
    supervisor = Supervisor(load_config(path), path, metrics=metrics)
    yield supervisor
    pending = [task for task in supervisor.context.tasks.in_flight if not task.done()]
    if pending:
        await asyncio.wait(pending, timeout=5)
    await supervisor.context.assembly.close()
    supervisor.context.notifier.close()


async def test_a_venue_that_cannot_be_read_is_its_actuators_problem(daemon: Supervisor) -> None:
    await daemon.reconciler.refresh()
    problems = daemon.context.runtime.problems
    assert problems.has(Source.ACTUATOR, "kill")
    assert not problems.has(Source.REDIS)
    summary = daemon.display.refresh()
    assert summary.health is Health.DEGRADED
    assert [p for p in summary.problems if p.startswith("actuator kill: ")], summary.problems


async def test_a_breaker_key_that_cannot_be_read_is_a_redis_problem(
    daemon: Supervisor, redis: Redis
) -> None:
    await redis.hset("breaker:state", "state", "TRIPPED")  # the wrong type: GET fails
    await daemon.reconciler.refresh()
    problems = daemon.context.runtime.problems
    assert not problems.has(Source.ACTUATOR, "breaker")
    assert "WRONGTYPE" in (problems.detail(Source.REDIS) or ""), problems.summary()
    assert any(p.startswith("redis: ") for p in daemon.display.refresh().problems)

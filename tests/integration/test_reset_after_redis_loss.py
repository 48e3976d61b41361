"""An operator's reset around a Redis loss (FLUSHALL, a restart without persistence) must
release the breaker: `{ns}:seq` is lost with Redis, and a reset numbered below the latch a
daemon still holds (and writes back) voided nothing, so the daemon engaged it again
("found released without a reset"). Run in process against the real test Redis, the reset
through the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from supervisor.config.loading import load_config
from supervisor.daemon import Supervisor
from supervisor.keys import engaged_key, reset_key, seq_key
from supervisor.kinds import kind_gauges
from supervisor.latch import Latch
from supervisor.model import TradingState
from supervisor.publish.metrics import Metrics
from testbed.daemon_process import cli
from testbed.redis_server import RedisServer
from tests.integration import test_daemon_logic as logic
from tests.integration.test_daemon_logic import Clock, settle, stale_tick, write

# The in-process daemon of test_daemon_logic (no [ha]: it leads), on a clock moved by hand.
clock = logic.clock
config_path = logic.config_path
supervisor = logic.supervisor

pytestmark = pytest.mark.anyio

REASON = "drill: the incident is over, releasing the breaker"
NUMBERED_FROM = 40  # the counter before the trip: the latch is numbered 41


async def hold_a_numbered_latch(daemon: Supervisor, redis: Redis, clock: Clock) -> int:
    """The leader trips the breaker; its latch is numbered well above 1; then Redis is
    emptied, the counter with it."""
    await redis.set(seq_key("sup"), NUMBERED_FROM)
    await stale_tick(redis, clock)
    await daemon.cycle.run("w1")
    await settle(daemon)
    await daemon.reconciler.refresh()  # the latch's number is kept in memory and the file
    await settle(daemon)
    latch = daemon.context.runtime.engaged["breaker"]
    assert latch.seq is not None and latch.seq > NUMBERED_FROM
    await redis.flushall()
    return latch.seq


def reset(config: Path) -> None:
    result = cli("reset", "breaker", "--reason", REASON, "--force", "--config", str(config))
    assert result.returncode == 0, result.stderr


def metrics() -> Metrics:
    return Metrics(CollectorRegistry(), kind_gauges=kind_gauges())


async def passes(daemon: Supervisor, clock: Clock, count: int = 3) -> None:
    for _ in range(count):
        clock.now += 1
        await daemon.reconciler.refresh()
        await settle(daemon)


async def assert_released(daemon: Supervisor, redis: Redis, latch_seq: int) -> None:
    assert "breaker" not in daemon.context.runtime.engaged
    assert daemon.display.refresh().trading_state is TradingState.ACTIVE
    state = json.loads(await redis.get("circuit_breaker:state") or "null")
    assert state is None or state["state"] == "OPEN", state
    reset_seq = int(await redis.hget(reset_key("sup"), "breaker") or 0)
    assert reset_seq > latch_seq
    # Gone, or voided by the reset: a write-back spawned before the reset may land after it.
    entry = await redis.hget(engaged_key("sup"), "breaker")
    assert entry is None or Latch.from_json(entry).voided_by(reset_seq), entry


async def test_a_reset_right_after_a_flush_releases_the_latch_the_daemon_holds(
    supervisor: Supervisor, redis: Redis, clock: Clock, config_path: Path
) -> None:
    """Before the daemon's next pass: the reset (on the daemon's host) reads state_dir."""
    seq = await hold_a_numbered_latch(supervisor, redis, clock)
    await redis.set("ticks:SPX", f"{clock.now:.3f}")

    reset(config_path)
    await passes(supervisor, clock)

    await assert_released(supervisor, redis, seq)


async def test_a_reset_from_another_host_after_a_peer_wrote_a_lower_latch_back(
    supervisor: Supervisor,
    redis: Redis,
    clock: Clock,
    tmp_path: Path,
    redis_server: RedisServer,
) -> None:
    """As in the nemesis: a peer writes the breaker back under its own lower number, so this
    daemon sees nothing lost and writes nothing back; the operator resets from a host whose
    state_dir knows nothing. The daemon's pass must have put the counter back."""
    seq = await hold_a_numbered_latch(supervisor, redis, clock)
    peer_latch = Latch(TradingState.REDUCE_ONLY, "breaker tripped by w1", clock.now - 5, "w1", 1)
    await redis.set(seq_key("sup"), 1)
    await redis.hset(engaged_key("sup"), "breaker", peer_latch.to_json())
    await redis.set("ticks:SPX", f"{clock.now:.3f}")
    await passes(supervisor, clock, count=1)  # the daemon's next pass, then the reset

    elsewhere = tmp_path / "operator-host"
    elsewhere.mkdir()
    reset(write(elsewhere / "supervisor.toml", redis_server.url))
    await passes(supervisor, clock)

    await assert_released(supervisor, redis, seq)


async def test_a_reset_after_the_daemon_wrote_its_latch_back(
    supervisor: Supervisor,
    redis: Redis,
    clock: Clock,
    tmp_path: Path,
    redis_server: RedisServer,
) -> None:
    """After the daemon's next pass (it writes the lost latch back and engages the lost
    breaker again, as it must without a reset), a reset from any host releases it."""
    seq = await hold_a_numbered_latch(supervisor, redis, clock)
    await redis.set("ticks:SPX", f"{clock.now:.3f}")
    await passes(supervisor, clock, count=1)
    assert "breaker" in supervisor.context.runtime.engaged  # no reset yet: stays engaged

    elsewhere = tmp_path / "operator-host"
    elsewhere.mkdir()
    reset(write(elsewhere / "supervisor.toml", redis_server.url))
    await passes(supervisor, clock)

    await assert_released(supervisor, redis, seq)


async def test_a_flush_without_a_reset_keeps_the_breaker_engaged(
    supervisor: Supervisor, redis: Redis, clock: Clock
) -> None:
    """The safe direction stays: no reset, the latch is written back and holds."""
    seq = await hold_a_numbered_latch(supervisor, redis, clock)
    await passes(supervisor, clock)
    assert supervisor.context.runtime.engaged["breaker"].seq == seq
    assert await redis.hget(engaged_key("sup"), "breaker") is not None
    assert int(await redis.get(seq_key("sup")) or 0) >= seq
    assert supervisor.display.refresh().trading_state is TradingState.REDUCE_ONLY


async def test_a_reset_lost_with_redis_while_the_latch_holder_was_down_is_written_back(
    supervisor: Supervisor,
    redis: Redis,
    clock: Clock,
    config_path: Path,
    tmp_path: Path,
    redis_server: RedisServer,
) -> None:
    """Nemesis seed 7: the daemon holding the latch is down when the operator resets, and
    Redis loses the reset before it restarts from its state_dir. A peer that read the reset
    writes it back on its next pass, so the restarted daemon finds its latch void."""
    await stale_tick(redis, clock)
    await supervisor.cycle.run("w1")
    await settle(supervisor)
    await supervisor.reconciler.refresh()
    await settle(supervisor)
    seq = supervisor.context.runtime.engaged["breaker"].seq
    assert seq is not None
    await supervisor.context.assembly.close()  # down (its state_dir keeps the latch)
    await redis.set("ticks:SPX", f"{clock.now:.3f}")

    elsewhere = tmp_path / "peer"
    elsewhere.mkdir()
    peer_config = write(elsewhere / "supervisor.toml", redis_server.url)
    reset(peer_config)
    peer = Supervisor(load_config(peer_config), peer_config, clock=clock, metrics=metrics())
    restarted = None
    try:
        await passes(peer, clock, count=1)  # it reads the reset
        await redis.flushall()
        await passes(peer, clock, count=1)  # and writes it back
        assert int(await redis.hget(reset_key("sup"), "breaker") or 0) > seq
        assert int(await redis.get(seq_key("sup")) or 0) > seq  # new latches number above it

        restarted = Supervisor(
            load_config(config_path), config_path, clock=clock, metrics=metrics()
        )
        await restarted.reconciler.restore()
        await passes(restarted, clock)
        assert "breaker" not in restarted.context.runtime.engaged
        assert restarted.display.refresh().trading_state is TradingState.ACTIVE
    finally:
        for daemon in (peer, restarted):
            if daemon is not None:
                await settle(daemon)
                await daemon.context.assembly.close()
                daemon.context.notifier.close()


async def test_a_reset_from_another_host_before_the_daemons_next_pass_waits_for_the_counter(
    supervisor: Supervisor,
    redis: Redis,
    clock: Clock,
    tmp_path: Path,
    redis_server: RedisServer,
) -> None:
    """Redis lost `{ns}:seq`, and the operator resets from a host whose state_dir knows
    nothing before the daemon's next pass: numbered at once, the reset would fall below the
    daemon's latch and release nothing. It waits for the pass that puts the counter back."""
    seq = await hold_a_numbered_latch(supervisor, redis, clock)
    await redis.set("ticks:SPX", f"{clock.now:.3f}")
    elsewhere = tmp_path / "operator-host"
    elsewhere.mkdir()
    config = write(elsewhere / "supervisor.toml", redis_server.url)

    async with anyio.create_task_group() as group:
        group.start_soon(anyio.to_thread.run_sync, reset, config)
        await anyio.sleep(1.0)  # the reset has started and found no counter
        await passes(supervisor, clock, count=1)
    await passes(supervisor, clock)

    await assert_released(supervisor, redis, seq)


async def test_a_latch_engaged_while_redis_was_away_takes_the_number_redis_holds(
    supervisor: Supervisor, redis: Redis, clock: Clock, config_path: Path
) -> None:
    """Nemesis seed 30: a leader engaged the breaker while Redis timed out (its latch has no
    number), lost the lease, and the new leader's numbered latch was in Redis. Unnumbered, the
    old leader's latch outlived the operator's reset and was written back above it: the
    breaker tripped again after the reset. It takes the number Redis holds, as at a restart."""
    unnumbered = Latch(TradingState.REDUCE_ONLY, "tripped while Redis was away", clock.now, "w1")
    supervisor.context.runtime.engaged["breaker"] = unnumbered
    published = Latch(TradingState.REDUCE_ONLY, "the new leader's trip", clock.now, "w1", 58)
    await redis.set(seq_key("sup"), 58)
    await redis.hset(engaged_key("sup"), "breaker", published.to_json())
    await redis.set("ticks:SPX", f"{clock.now:.3f}")
    await passes(supervisor, clock, count=1)
    assert supervisor.context.runtime.engaged["breaker"].seq == 58

    reset(config_path)
    await passes(supervisor, clock)
    await assert_released(supervisor, redis, 58)

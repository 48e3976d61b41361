"""A clock corrected by a fraction of a second while the daemon runs, as systemd-timesyncd does
at boot (it steps a clock more than 0.4 s off): the daemon believes the correction once Redis
TIME confirms it, and trips land on the threshold by the real clock. A wrong step of the same
size, refuted by Redis TIME, is ignored. The clock offset gauge, health and `status` show the
skew while it lasts.

libfaketime fakes the daemon's CLOCK_REALTIME only (see test_clock_faults.py); the feed and
Redis keep the real time. The trip is timed on the real clock by polling the flag.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from redis import Redis

from supervisor.clock import SLEW_RATE, STEP_S
from testbed.config_blocks import redis_flag, ticks_watchdog
from testbed.daemon_process import Daemon, cli
from testbed.notify_socket import NotifySocket
from testbed.redis_server import RedisServer
from testbed.tick_feed import TickFeed
from testbed.waiting import wait_until
from tests.faults.stack import assert_no_crash, sample, scrape, statuses, write_config
from tests.faults.test_clock_faults import faketime_env, faketime_problem

pytestmark = pytest.mark.slow

BODY = redis_flag("flag", "ops:halt") + ticks_watchdog(
    ["flag"], warn=None, breach="2s", trip_after=None, instruments=["SPX"]
)
FLAG = "ops:halt"
BREACH_S = 2.0
SKEWED_S = 3.0  # how long the daemon runs on a wrong clock before the correction
SETTLED_S = 1.0  # after the correction: Redis TIME confirms it within a second (its period)


def set_offset(offset_file: Path, offset_s: float) -> None:
    offset_file.write_text(f"{offset_s:+.3f}\n")


def trip_lateness(client: Redis, feed: TickFeed) -> float:
    """Stop the feed; how long after its last tick + BREACH_S the flag was set, by the real
    clock (polled every millisecond or so)."""
    last_tick = feed.stop()
    deadline = time.time() + BREACH_S + 5
    while client.get(FLAG) is None:
        assert time.time() < deadline, "no trip"
        time.sleep(0.001)
    return time.time() - (last_tick + BREACH_S)


def offset_gauge(port: int) -> float | None:
    return sample(scrape(port), "supervisor_clock_offset_seconds")


def offset_read(port: int, refused: bool) -> bool:
    """The daemon has read Redis TIME (or, with TIME refused, has said it cannot)."""
    gauge = offset_gauge(port)
    return gauge is not None and (refused or not math.isnan(gauge))


def largest_offset(port: int, for_s: float) -> float | None:
    """The offset gauge of largest size seen over `for_s` (read every 100 ms)."""
    seen: list[float] = []
    until = time.monotonic() + for_s
    while time.monotonic() < until:
        gauge = offset_gauge(port)
        if gauge is not None and not math.isnan(gauge):
            seen.append(gauge)
        time.sleep(0.1)
    return max(seen, key=abs) if seen else offset_gauge(port)


def unbelieved_gauge(port: int) -> float | None:
    return sample(scrape(port), "supervisor_clock_unbelieved_step_seconds")


# A loaded machine (the suite's other worker, a nemesis beside it) delays the deadline run
# and the fsyncs before the action, never the clock: CI measured up to +415 ms there, where
# an idle machine gives +7 to +29 ms (the fault matrix). Still far below the 0.9 s of an uncorrected
# clock; that the clock itself is right is proven by the offset gauge (within 50 ms).
LATE_UNDER_LOAD_S = 0.5


def assert_on_threshold(lateness_s: float) -> None:
    """Never early by more than 100 ms (load cannot make a trip early; a clock 0.9 s ahead
    tripped 879 ms early), and late by at most 100 ms plus what load adds."""
    assert -0.1 < lateness_s < 0.1 + LATE_UNDER_LOAD_S, f"trip {lateness_s * 1000:+.0f} ms"


@dataclass(frozen=True)
class Row:
    lateness_s: float  # the trip, from the last tick + BREACH_S, on the real clock
    skewed_offset_s: float | None  # supervisor_clock_offset_seconds while skewed
    unbelieved_s: float | None  # supervisor_clock_unbelieved_step_seconds at the end
    log: str


def run_row(
    tmp_path: Path,
    redis: RedisServer,
    notify: NotifySocket,
    start_s: float,
    then_s: float,
    settled_s: float = SETTLED_S,
    time_refused: bool = False,
) -> Row:
    """One daemon whose clock starts `start_s` off and is stepped to `then_s` off after
    SKEWED_S, then `settled_s` later its feed stops. Without Redis TIME (refused by the
    ACL) the offset is not measured and nothing is said about it."""
    client = Redis.from_url(redis.url, socket_timeout=1)
    client.delete(FLAG)
    offset_file = tmp_path / "offset"
    set_offset(offset_file, start_s)
    setup = write_config(tmp_path, redis.url, BODY)
    feed = TickFeed(redis.url, instruments=("SPX",)).start()
    daemon = Daemon(setup.config, notify, extra_env=faketime_env(offset_file))
    try:
        started = time.time()
        notify.wait_for("STATUS=", timeout_s=15)
        port = setup.metrics_port
        wait_until(lambda: offset_read(port, time_refused), 10, "an offset reading")
        # A few readings on the wrong clock, and at least SKEWED_S of it. The reading that
        # shows the skew best counts: libfaketime re-reads its file on every call and may
        # once read no offset (the real time), a step that Redis TIME confirms at once.
        skewed_gauge = largest_offset(port, max(1.0, started + SKEWED_S - time.time()))
        measured = not time_refused
        if abs(start_s) > 0.25 and measured:
            assert any("clock: Redis TIME" in line for line in statuses(notify, started))
            status = cli("status", "--config", str(setup.config))
            print(status.stdout)
            assert "clock offset:  Redis TIME" in status.stdout
        set_offset(offset_file, then_s)
        time.sleep(settled_s)
        lateness = trip_lateness(client, feed)
        corrected_gauge = offset_gauge(setup.metrics_port)
        print(f"offset gauge after the correction: {corrected_gauge}")
        # Every row ends with the daemon's clock right: corrected, or a wrong step refuted.
        if measured:
            assert corrected_gauge is not None and abs(corrected_gauge) < 0.05
        assert "clock: Redis TIME" not in statuses(notify, started)[-1]  # not DEGRADED now
        assert_no_crash(daemon)
        for line in daemon.log().splitlines():
            if "clock" in line:
                print(f"  log: {line[-200:]}")
        return Row(lateness, skewed_gauge, unbelieved_gauge(setup.metrics_port), daemon.log())
    finally:
        feed.stop()
        client.close()
        assert daemon.terminate() == 0


@pytest.fixture
def can_fake_time(tmp_path: Path) -> None:
    problem = faketime_problem(tmp_path)
    if problem is not None:
        pytest.skip(f"cannot step the daemon's clock: {problem}")


@pytest.mark.usefixtures("can_fake_time")
@pytest.mark.parametrize(
    ("start_s", "then_s"),
    [(0.0, 0.0), (-0.9, 0.0), (0.9, 0.0)],
    ids=["right", "0.9s-behind-corrected", "0.9s-ahead-corrected"],
)
def test_a_subsecond_correction_is_believed_and_trips_land_on_the_threshold(
    tmp_path: Path,
    private_redis: RedisServer,
    notify_socket: NotifySocket,
    start_s: float,
    then_s: float,
) -> None:
    row = run_row(tmp_path, private_redis, notify_socket, start_s, then_s)
    print(
        f"daemon clock {start_s:+.1f}s, then {then_s:+.1f}s: offset gauge while skewed"
        f" {row.skewed_offset_s:+.3f}s; trip {row.lateness_s * 1000:+.0f} ms from tick"
        f" + {BREACH_S:.0f}s on the real clock"
    )
    skewed = row.skewed_offset_s
    assert skewed is not None and abs(skewed + start_s) < 0.05  # Redis minus the daemon
    assert_on_threshold(row.lateness_s)
    assert row.unbelieved_s is not None and abs(row.unbelieved_s) < 0.05
    if start_s == then_s:  # nothing stepped: nothing to say
        assert "system clock stepped" not in row.log and "corrected by" not in row.log
    else:
        step = then_s - start_s
        assert f"system clock stepped by {step:+.3f}" in row.log
        assert "confirmed by Redis TIME: believed at once" in row.log
        assert "daemon clock corrected by" in row.log and "(confirmed)" in row.log


@pytest.mark.usefixtures("can_fake_time")
def test_a_wrong_subsecond_step_refuted_by_redis_is_ignored(
    tmp_path: Path, private_redis: RedisServer, notify_socket: NotifySocket
) -> None:
    row = run_row(tmp_path, private_redis, notify_socket, 0.0, 0.9)
    print(
        f"daemon clock right, then stepped wrongly to +0.9s: trip {row.lateness_s * 1000:+.0f} ms"
        f" from tick + {BREACH_S:.0f}s on the real clock; the step not believed:"
        f" {row.unbelieved_s:+.3f}s"
    )
    assert "system clock stepped by +0.900s" in row.log and "refuted by Redis TIME" in row.log
    assert "daemon clock corrected by" not in row.log
    assert_on_threshold(row.lateness_s)
    assert row.unbelieved_s is not None and abs(row.unbelieved_s - 0.9) < 0.05


@pytest.mark.usefixtures("can_fake_time")
def test_without_a_second_opinion_a_subsecond_correction_is_followed_within_ten_seconds(
    tmp_path: Path, private_redis: RedisServer, notify_socket: NotifySocket
) -> None:
    """Redis TIME refused (the ACL of a deployment that does not allow it): the correction is
    followed at 100 ms/s (or believed at once, where the kernel says NTP synchronised the
    clock); after STEP_S / SLEW_RATE (10 s) the trip lands on the threshold."""
    admin = Redis.from_url(private_redis.url, socket_timeout=1)
    admin.acl_setuser("default", enabled=True, nopass=True, commands=["-time"])
    admin.close()
    bound_s = STEP_S / SLEW_RATE + 0.5
    row = run_row(tmp_path, private_redis, notify_socket, -0.9, 0.0, bound_s, time_refused=True)
    print(
        f"daemon clock -0.9s, then +0.0s, no Redis TIME: trip {row.lateness_s * 1000:+.0f} ms"
        f" from tick + {BREACH_S:.0f}s on the real clock"
    )
    assert "cannot read Redis TIME" in row.log
    followed = "no second opinion: followed at 100 ms/s, within 9.0s" in row.log
    assert followed or "confirmed by the kernel's NTP state" in row.log
    # The last move may leave up to AGREE_S (5 ms, reading noise) of the 0.9 s.
    assert re.search(r"daemon clock corrected by \+0\.(89[5-9]|900)s", row.log)
    assert_on_threshold(row.lateness_s)

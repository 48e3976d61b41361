"""Side by side: one fault (a feed writing epoch-ms ticks to Redis every 100 ms stops; the
rule is "age > 2 s => POST the kill switch") handled by
  - this daemon (tick_freshness, interval 1 s, breach 2 s, the HTTP actuator);
  - Prometheus + Alertmanager, tuned: 1 s scrape and evaluation, `for: 0s`, group_wait 0 s,
    group_interval 1 s; the age from a tiny exporter, the kill from the webhook receiver;
  - monit 5.33 at `set daemon 1` with a `check program` and `exec`;
  - Prometheus + Alertmanager with their defaults (1 m scrape and evaluation, group_wait
    30 s): a trial takes 1-2.5 minutes, so a few run in parallel, a third of a cycle apart,
    alongside the others' trials.
Every server is a child process on free 127.0.0.1 ports with temporary files, stopped by PID.

    .venv/bin/python -m benchmarks.anchors.compare [--trials 20] [--default-trials 3]
"""

from __future__ import annotations

import argparse
import contextlib
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchmarks import setup
from benchmarks.anchors.daemon import running_supervisor
from benchmarks.anchors.exporter import AgeExporter
from benchmarks.anchors.monit import running_monit
from benchmarks.anchors.prometheus import (
    DEFAULT,
    TUNED,
    PrometheusStack,
    Timing,
    running_prometheus,
)
from benchmarks.anchors.trials import FEED_PERIOD_S, Watched, round_robin, staggered
from benchmarks.report import Figures, Row, median, percentile, render
from benchmarks.stack import tick_key
from testbed.bulk_feed import BulkFeed
from testbed.killswitch_server import Behaviour, KillSwitchServer
from testbed.redis_server import RedisServer, running_redis

TUNED_FEEDS = 5  # taken in turn: see TUNED_REST_S
# Alertmanager drops an emptied alert group only at its next 30 s maintenance; until then a
# new alert for the same feed joins the old group and waits for its group_interval tick.
# A tuned feed rests 40 s after it is fed again, so that every fault opens a new group.
TUNED_REST_S = 40.0
DEFAULT_CYCLE_S = 60.0
DEFAULT_TIMEOUT_S = 240.0

LABELS = {
    "daemon": "this daemon",
    "tuned": "Prometheus tuned",
    "monit": "monit",
    "default": "Prometheus defaults",
}


def seconds(value: float) -> str:
    return f"{value * 1000:.1f} ms" if abs(value) < 1 else f"{value:.2f} s"


def spread(values: list[float]) -> str:
    return (
        f"min {seconds(min(values))}, median {seconds(median(values))},"
        f" p99 {seconds(percentile(values, 0.99))}"
    )


class Stack:
    """Redis, the feed, an endpoint per system, and every system running."""

    def __init__(self, directory: Path, server: RedisServer, default_trials: int) -> None:
        self.directory = directory
        self.server = server
        self.feeds = {
            "daemon": ["daemon"],
            "tuned": [f"tuned-{i}" for i in range(TUNED_FEEDS)],
            "monit": ["monit"],
            "default": [f"default-{i}" for i in range(default_trials)],
        }
        every = [tick_key(feed) for feeds in self.feeds.values() for feed in feeds]
        self.ticks = BulkFeed(server.url, every, FEED_PERIOD_S)
        self.kills = {name: KillSwitchServer(Behaviour(keep_alive=True)) for name in self.feeds}
        self.tuned: PrometheusStack | None = None

    def watched(self, name: str, rest_s: float) -> Watched:
        return Watched(LABELS[name], self.feeds[name], self.kills[name], rest_s)

    @contextlib.contextmanager
    def running(self) -> Iterator[Stack]:
        with contextlib.ExitStack() as stack:
            self.ticks.start()
            stack.callback(self.ticks.stop)
            for kill in self.kills.values():
                stack.enter_context(kill)
            kill = self.kills["daemon"]
            stack.enter_context(
                running_supervisor(self.directory / "daemon", self.server, "daemon", kill)
            )
            self.tuned = stack.enter_context(self.prometheus("tuned", TUNED))
            if self.feeds["default"]:
                stack.enter_context(self.prometheus("default", DEFAULT))
            stack.enter_context(
                running_monit(
                    self.directory / "monit",
                    self.server.port,
                    tick_key("monit"),
                    self.kills["monit"].activate_url,
                )
            )
            time.sleep(2)  # every system has seen its feeds fresh
            yield self

    @contextlib.contextmanager
    def prometheus(self, name: str, timing: Timing) -> Iterator[PrometheusStack]:
        keys = {feed: tick_key(feed) for feed in self.feeds[name]}
        with AgeExporter(self.server.url, keys) as exporter:
            kill_url = self.kills[name].activate_url
            directory = self.directory / name
            with running_prometheus(directory, timing, exporter.address, kill_url) as running:
                yield running


def measure(stack: Stack, trials: int, default_trials: int) -> dict[str, list[float]]:
    rng = random.Random(11)
    systems = [stack.watched("daemon", 2.0), stack.watched("tuned", TUNED_REST_S)]
    systems.append(stack.watched("monit", 3.0))
    default = stack.watched("default", 0.0)
    with ThreadPoolExecutor(max_workers=max(1, default_trials)) as pool:
        parallel = [
            pool.submit(
                staggered,
                stack.ticks,
                default,
                index,
                default_trials,
                DEFAULT_CYCLE_S,
                DEFAULT_TIMEOUT_S,
            )
            for index in range(default_trials)
        ]
        late = round_robin(stack.ticks, systems, trials, rng)
        if parallel:
            late[default.name] = [future.result() for future in parallel]
    return late


def rows(trials: int = 20, default_trials: int = 3, into: Figures | None = None) -> list[Row]:
    setup.ensure()
    switch_s = sys.getswitchinterval()
    # The endpoints' and the exporters' threads share this process with the feed: let a
    # request have the GIL at once (Python hands it over every 5 ms by default).
    sys.setswitchinterval(0.0005)
    try:
        with (
            tempfile.TemporaryDirectory() as tmp,
            running_redis(Path(tmp)) as server,
            Stack(Path(tmp), server, default_trials).running() as stack,
        ):
            late = measure(stack, trials, default_trials)
            assert stack.tuned is not None
            offset = stack.tuned.scrape_to_evaluation_s()
    finally:
        sys.setswitchinterval(switch_s)
    if into is not None:
        into.fault_to_kill_s.update(late)
    return table(late, offset, trials, default_trials)


def table(
    late: dict[str, list[float]], offset_s: float, trials: int, default_trials: int
) -> list[Row]:
    ours = median(late[LABELS["daemon"]])
    found = [
        Row(
            f"side by side, fault -> kill: this daemon ({trials} trials)",
            "",
            spread(late[LABELS["daemon"]]),
            None,
        )
    ]
    described = {
        "tuned": f"Prometheus+AM tuned, 1 s scrape/eval, group_wait 0s ({trials})",
        "monit": f"monit 5.33, set daemon 1, check program ({trials})",
        "default": f"Prometheus+AM defaults, 1 m scrape/eval, group_wait 30s ({default_trials}:"
        " minutes each, run in parallel)",
    }
    for name, text in described.items():
        values = late.get(LABELS[name])
        if values:
            ratio = median(values) / ours
            measured = f"{spread(values)}; median {ratio:,.0f}x the daemon's"
            found.append(Row(f"side by side: {text}", "", measured, None))
    found.append(
        Row(
            "Prometheus tuned, this run: its evaluation comes after the scrape by",
            "",
            f"{seconds(offset_s)} (fixed phases, hashed from the target and the rule group)",
            None,
        )
    )
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--default-trials", type=int, default=3)
    args = parser.parse_args()
    print(render(rows(args.trials, args.default_trials)))


if __name__ == "__main__":
    main()

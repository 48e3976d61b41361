"""Fresh ticks written to Redis in a thread, as a market-data feed does."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from redis import Redis
from redis.exceptions import RedisError

from supervisor.config.sentinel_url import is_sentinel_url
from testbed.sentinel import FollowedMaster


def epoch_ms(now: float) -> str:
    return str(int(now * 1000))


class TickFeed:
    """Writes a fresh tick for each instrument every `period_s`, in a thread: by default the
    epoch in ms; `render` makes any value of the time (a JSON quote...).

    Like a real feed it outlives a Redis outage: a failed write is counted and the next one
    reconnects (`socket_timeout` bounds a write to a frozen Redis). Given a
    `redis+sentinel://` URL it writes to whichever server the sentinels name master."""

    def __init__(
        self,
        redis_url: str,
        instruments: tuple[str, ...] = ("SPX", "ES"),
        period_s: float = 0.1,
        key: str = "ticks:last:{instrument}",
        render: Callable[[float], str] = epoch_ms,
    ):
        self.master: Redis | FollowedMaster
        if is_sentinel_url(redis_url):
            self.master = FollowedMaster(redis_url, timeout_s=1.0)
        else:
            self.master = Redis.from_url(redis_url, socket_timeout=1.0, socket_connect_timeout=1.0)
        self.instruments = instruments
        self.period_s = period_s
        self.key = key
        self.render = render
        self.last_tick_at = 0.0
        self.failed_writes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> TickFeed:
        self.write()
        self._thread.start()
        return self

    def write(self) -> None:
        now = time.time()
        client = self.master.current() if isinstance(self.master, FollowedMaster) else self.master
        for instrument in self.instruments:
            client.set(self.key.replace("{instrument}", instrument), self.render(now))
        self.last_tick_at = int(now * 1000) / 1000

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            try:
                self.write()
            except (RedisError, OSError):
                self.failed_writes += 1

    def stop(self) -> float:
        """Stop feeding; return the timestamp of the last tick written."""
        self._stop.set()
        self._thread.join(timeout=5)
        self.master.close()
        return self.last_tick_at

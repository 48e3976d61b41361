"""`status`: read back what the daemon publishes in Redis (supervisor/publish/redis_state.py)."""

from __future__ import annotations

from redis.exceptions import RedisError

from supervisor.config.settings import Settings
from supervisor.errors import first_line
from supervisor.ha.instances import read_instances
from supervisor.keys import heartbeat_key, state_key, watchdog_key
from supervisor.sources.redis import connect
from supervisor.values import parse_number


def configured_groups(settings: Settings) -> dict[str, bool]:
    """Whether any actuator is a breaker (reduce-only) or a kill switch (halted, flatten):
    `status` says "none configured" rather than a state the daemon publishes regardless."""
    levels = {getattr(a, "level", None) for a in settings.actuators.values()}
    return {
        "breaker": "reduce_only" in levels,
        "kill_switch": bool(levels & {"halted", "flatten"}),
    }


async def read_published(settings: Settings) -> dict[str, object]:
    """The published state as plain data; `alive` says whether a heartbeat is present,
    `configured` which groups of actuators the config has."""
    ns = settings.supervisor.namespace
    redis = connect(settings.redis, "trading-supervisor-status")
    try:
        async with redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(state_key(ns))
            pipe.get(heartbeat_key(ns))
            for watchdog in settings.watchdogs:
                pipe.hgetall(watchdog_key(ns, watchdog.name))
            # A key of the wrong type fails alone (WRONGTYPE): the rest is still shown.
            state, heartbeat, *watchdogs = await pipe.execute(raise_on_error=False)
        instances = await read_instances(redis, ns)
    except (RedisError, OSError) as exc:
        return {"alive": False, "error": f"redis: {first_line(exc)}"}
    finally:
        await redis.aclose()
    for result in (state, heartbeat, *watchdogs):
        if isinstance(result, OSError):  # the connection, not a key: no answer at all
            return {"alive": False, "error": f"redis: {first_line(result)}"}
    heartbeat = None if isinstance(heartbeat, RedisError) else heartbeat
    return {
        "alive": heartbeat is not None,
        "heartbeat_at": _epoch(heartbeat),
        "state": _decode(state),
        "watchdogs": {
            w.name: _decode(h) for w, h in zip(settings.watchdogs, watchdogs, strict=True)
        },
        "instances": instances,
        "configured": configured_groups(settings),
    }


def _epoch(raw: bytes | None) -> float | None:
    """The heartbeat's time; None when absent or not a number (whatever wrote it, `status`
    still shows the rest)."""
    try:
        return parse_number(raw)
    except ValueError:
        return None


def _decode(fields: dict[bytes, bytes] | Exception) -> dict[str, str]:
    if isinstance(fields, Exception):  # not a hash: written by hand, shown as nothing
        return {}
    return {k.decode("utf-8", "replace"): v.decode("utf-8", "replace") for k, v in fields.items()}

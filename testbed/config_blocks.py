"""TOML blocks of a daemon config that the tests and the testbed put together, each written once.

Every function returns finished TOML (no `str.format` placeholders left): the `{instrument}`,
`{reason}`, `{instance_id}` and `{fencing_token}` in it are the daemon's own templates.
"""

from __future__ import annotations

from collections.abc import Iterable

INSTRUMENTS = ("SPX", "ES")
TICKS_KEY = "ticks:last:{instrument}"
KILL_FLAG_KEY = "ops:kill_switch"
# What testbed.killswitch_server's status endpoint answers once the switch is on.
VENUE_ENGAGED = "kill_switch_active == `true`"
# The kill request's body that names who asked and with which fencing token (HA tests).
FENCED_BY = '{ by = "{instance_id}", token = "{fencing_token}" }'

# A watchdog that breaches half a second after the last tick, checked four times a second.
FAST_TICKS = {"warn": "300ms", "breach": "500ms", "interval": "250ms"}

BREAKER = """
[actuators.breaker]
kind = "redis_breaker"
level = "reduce_only"
"""


def supervisor_tables(
    state_dir: object,
    redis_url: str,
    *,
    instance_id: str,
    namespace: str = "sup",
    metrics_port: int | None = None,
    redis_timeout: str = "300ms",
    dry_run: bool | None = None,
    redis_extra: str = "",
) -> str:
    """[supervisor], [redis] and [metrics]: on 127.0.0.1:`metrics_port`, or off without one.
    `redis_extra` is more lines of [redis] (credentials, TLS)."""
    lines = [
        "",
        "[supervisor]",
        f'instance_id = "{instance_id}"',
        f'namespace = "{namespace}"',
        f'state_dir = "{state_dir}"',
    ]
    if dry_run is not None:
        lines.append(f"dry_run = {str(dry_run).lower()}")
    lines += ["", "[redis]", f'url = "{redis_url}"', f'timeout = "{redis_timeout}"']
    if redis_extra:
        lines.append(redis_extra.strip("\n"))
    lines += ["", "[metrics]"]
    if metrics_port is None:
        lines.append("enabled = false")
    else:
        lines.append(f'listen = "127.0.0.1:{metrics_port}"')
    return "\n".join(lines) + "\n"


def postgres(dsn: str, timeout: str | None = "1s") -> str:
    """[postgres]: the read-only pool the SQL watchdogs share."""
    table = f'\n[postgres]\ndsn = "{dsn}"\n'
    return table if timeout is None else table + f'timeout = "{timeout}"\n'


def toml_list(items: Iterable[str]) -> str:
    """["SPX", "ES"]."""
    return "[" + ", ".join(f'"{item}"' for item in items) + "]"


def ticks_watchdog(
    on_breach: Iterable[str] = ("breaker",),
    *,
    name: str = "spx_ticks",
    warn: str | None = "1s",
    breach: str = "1500ms",
    interval: str | None = "500ms",
    trip_after: int | str | None = 2,
    instruments: Iterable[str] | str = INSTRUMENTS,
    key: str = TICKS_KEY,
    extra: str = "",
) -> str:
    """A tick_freshness watchdog (over ticks:last:{instrument} unless told); `None` leaves a
    field to its default, `extra` is more lines of the same table (clear_after...)."""
    listed = instruments if isinstance(instruments, str) else toml_list(instruments)
    lines = [
        "",
        "[[watchdogs]]",
        f'name = "{name}"',
        'kind = "tick_freshness"',
        f'key = "{key}"',
        f"instruments = {listed}",
    ]
    if warn is not None:
        lines.append(f'warn = "{warn}"')
    lines.append(f'breach = "{breach}"')
    if interval is not None:
        lines.append(f'interval = "{interval}"')
    if trip_after is not None:
        lines.append(f"trip_after = {trip_after}")
    if extra:
        lines.append(extra.strip("\n"))
    lines.append(f"on_breach = {toml_list(on_breach)}")
    return "\n".join(lines) + "\n"


def http_kill(
    activate_url: str,
    *,
    name: str = "kill_api",
    status_url: str | None = None,
    json: str | None = None,
    timeout: str = "300ms",
    retry_for: str = "2s",
    on_failure: Iterable[str] = (),
    extra: str = "",
) -> str:
    """An `http` kill switch at FLATTEN; `status_url` verifies it against the test venue,
    `json` is the request body as a TOML inline table."""
    lines = ["", f"[actuators.{name}]", 'kind = "http"', 'level = "flatten"']
    lines.append(f'url = "{activate_url}"')
    if json is not None:
        lines.append(f"json = {json}")
    if status_url is not None:
        lines.append(f'verify = {{ url = "{status_url}", expect = "{VENUE_ENGAGED}" }}')
    lines += [f'timeout = "{timeout}"', f'retry_for = "{retry_for}"']
    on_failure = tuple(on_failure)
    if on_failure:
        lines.append(f"on_failure = {toml_list(on_failure)}")
    if extra:
        lines.append(extra.strip("\n"))
    return "\n".join(lines) + "\n"


def redis_flag(
    name: str = "kill_flag",
    key: str = KILL_FLAG_KEY,
    value: str | None = "1",
    level: str = "halted",
) -> str:
    """A `redis_flag` actuator (HALTED unless told); `value` None leaves its default."""
    lines = ["", f"[actuators.{name}]", 'kind = "redis_flag"', f'level = "{level}"']
    lines.append(f'key = "{key}"')
    if value is not None:
        lines.append(f'value = "{value}"')
    return "\n".join(lines) + "\n"


def ha(lease_ttl: str = "2s") -> str:
    """[ha] on: one leader per namespace, holding the lease."""
    return f'\n[ha]\nenabled = true\nlease_ttl = "{lease_ttl}"\n'


def ha_and_kill(activate_url: str) -> str:
    """What the HA process tests add: [ha], a fenced kill switch and a watchdog that uses it."""
    kill = http_kill(activate_url, name="kill", json=FENCED_BY)
    return ha() + kill + ticks_watchdog(["kill"], name="spx_kill", warn=None)

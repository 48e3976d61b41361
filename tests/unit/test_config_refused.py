"""Values the config refuses, each with its field path: what would otherwise be silently
accepted and then never trip, trip on the wrong day, or crash `run` later.

The helpers and fragments are those of test_config.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from supervisor.config.loading import MAX_CONFIG_BYTES, load_config
from supervisor.config.types import check_http_url
from supervisor.errors import ConfigError
from supervisor.watchdogs.tick_freshness import TickFreshnessConfig
from tests.unit.test_config import BREAKER, SPX, clean_environment, load, problems, write

__all__ = ["clean_environment"]  # the autouse fixture, shared with test_config.py

NO_WATCHDOGS = "no watchdogs configured: a supervisor that watches nothing protects nothing"
VALUE = '[[watchdogs]]\nname = "v"\nkind = "redis_value"\nkey = "k"\n'


# --- NaN and infinities ---------------------------------------------------------------------


@pytest.mark.parametrize("number", ["nan", "+nan", "inf", "+inf", "-inf"])
@pytest.mark.parametrize("level", ["warn", "breach", "critical"])
def test_nan_and_infinite_thresholds_are_refused(tmp_path: Path, number: str, level: str) -> None:
    # NaN compares false with everything: `breach = nan` would never trip.
    assert problems(tmp_path, VALUE + f"{level} = {number}") == [
        f"watchdogs[0] (v).{level}: Input should be a finite number"
    ]


@pytest.mark.parametrize("number", ["nan", "inf", "-inf"])
def test_nan_and_infinite_durations_are_refused(tmp_path: Path, number: str) -> None:
    [problem] = problems(tmp_path, SPX.replace('"15s"', number))
    assert problem.startswith("watchdogs[0] (spx).breach: invalid duration")


def test_a_nan_threshold_in_an_environment_override_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    watchdog = {"name": "v", "kind": "redis_value", "key": "k", "breach": float("nan")}
    monkeypatch.setenv("SUPERVISOR_WATCHDOGS", json.dumps([watchdog]))  # JSON's NaN
    assert problems(tmp_path) == ["watchdogs[0].breach: Input should be a finite number"]


@pytest.mark.parametrize("text", ["inf", "nan", "-inf", "Infinity"])
def test_a_non_finite_duration_in_an_environment_override_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    monkeypatch.setenv("SUPERVISOR_HA__LEASE_TTL", text)
    [problem] = problems(tmp_path, SPX)
    assert problem.startswith("ha.lease_ttl: invalid duration")


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("{ size = nan }", "size: NaN and infinity are not JSON numbers"),
        ("{ a = { b = [1, inf] } }", "a.b[1]: NaN and infinity are not JSON numbers"),
        ("{ at = 2026-01-02 }", "at: a TOML date has no JSON form; write it as a string"),
        ("{ at = 09:30:00 }", "at: a TOML time has no JSON form; write it as a string"),
    ],
)
def test_a_body_template_that_is_not_json_is_refused(
    tmp_path: Path, body: str, problem: str
) -> None:
    # json.dumps would send NaN (not JSON) or raise on a date at the moment of the kill.
    kill = f'[actuators.kill]\nkind = "http"\nlevel = "halted"\nurl = "http://h/k"\njson = {body}'
    assert problems(tmp_path, kill, SPX) == [f"actuators.kill.json: {problem}"]
    deadman = f'[actuators.cod]\nkind = "deadman"\nurl = "http://h/c"\njson = {body}'
    assert problems(tmp_path, deadman, SPX) == [f"actuators.cod.json: {problem}"]


def test_a_json_body_of_plain_values_still_loads(tmp_path: Path) -> None:
    kill = '[actuators.kill]\nkind = "http"\nlevel = "halted"\nurl = "http://h/k"\n'
    kill += 'json = { reason = "{reason}", n = 1, x = 0.5, ok = true, l = [1, "a", { y = 2 }] }'
    assert load(tmp_path, kill, BREAKER, SPX).actuators["kill"].kind == "http"


# --- addresses: listen, URLs ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("listen", "problem"),
    [
        ("127.0.0.1:99999", "port 99999 is out of range 1-65535"),
        ("127.0.0.1:0", "port 0 is out of range 1-65535"),
        ("999.1.1.1:9464", "'999.1.1.1' is not a valid IPv4 address"),
        ("[fe80::zz]:9464", "'fe80::zz' is not a valid IPv6 address"),
        ("metrics host:9464", "'metrics host' is not a host name or an IP address"),
        ("9464", "use 'host:port' or '[ipv6]:port', e.g. '127.0.0.1:9464'"),
    ],
)
def test_a_metrics_address_that_cannot_be_bound_is_refused(
    tmp_path: Path, listen: str, problem: str
) -> None:
    # Before: "127.0.0.1:99999" validated, then `run` died in bind() with an OverflowError.
    assert problems(tmp_path, SPX, f'[metrics]\nlisten = "{listen}"') == [
        f"metrics.listen: {problem}"
    ]


@pytest.mark.parametrize("listen", ["127.0.0.1:9464", "0.0.0.0:1", "[::1]:65535", "mon-1:9464"])
def test_usable_metrics_addresses_load(tmp_path: Path, listen: str) -> None:
    assert load(tmp_path, SPX, f'[metrics]\nlisten = "{listen}"').metrics.listen == listen


BAD_HTTP_URLS = [
    ("http://venue.example:99999/kill", "the port is not a number in 1-65535"),
    ("http://venue.example:0/kill", "port 0 is out of range 1-65535"),
    ("venue.example/kill", "must start with http:// or https:// and name a host"),
    ("ftp://venue.example/kill", "must start with http:// or https:// and name a host"),
    ("http:///kill", "must start with http:// or https:// and name a host"),
    ("http://venue.example/kill now", "a URL cannot contain spaces or control characters"),
]


@pytest.mark.parametrize(("url", "problem"), BAD_HTTP_URLS)
def test_an_actuator_url_httpx_cannot_call_is_refused(
    tmp_path: Path, url: str, problem: str
) -> None:
    # Before: any string was accepted and the kill switch failed at its first call (port
    # 99999 even raised past httpx's own errors).
    kill = f'[actuators.kill]\nkind = "http"\nlevel = "halted"\nurl = "{url}"'
    assert problems(tmp_path, kill, SPX) == [f"actuators.kill.url: {problem}"]
    cod = f'[actuators.cod]\nkind = "deadman"\nurl = "{url}"'
    assert problems(tmp_path, cod, SPX) == [f"actuators.cod.url: {problem}"]
    verify = kill.replace(url, "http://h/k") + f'\nverify = {{ url = "{url}", expect = "ok" }}'
    assert problems(tmp_path, verify, SPX) == [f"actuators.kill.verify.url: {problem}"]


@pytest.mark.parametrize(("url", "problem"), BAD_HTTP_URLS[:2])
def test_a_watchdog_url_with_an_impossible_port_is_refused(
    tmp_path: Path, url: str, problem: str
) -> None:
    health = f'[[watchdogs]]\nname = "h"\nkind = "http_health"\nurl = "{url}"'
    assert problems(tmp_path, health) == [f"watchdogs[0] (h).url: {problem}"]


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("redis://127.0.0.1:99999/0", "the port is not a number in 1-65535"),
        ("redis://127.0.0.1:0/0", "port 0 is out of range 1-65535"),
        (
            "redis://127.0.0.1:6379/0?socket_timeout=soon",
            "not a usable Redis URL: Invalid value for 'socket_timeout' in connection URL.",
        ),
    ],
)
def test_a_redis_url_redis_py_would_refuse_at_start_is_refused(
    tmp_path: Path, url: str, problem: str
) -> None:
    # Before: `config validate` crashed with a traceback in redis-py's URL parser.
    assert problems(tmp_path, SPX, f'[redis]\nurl = "{url}"') == [f"redis.url: {problem}"]


# --- durations and counts -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "problem"),
    [
        ('interval = "0.0001ms"', "interval: must be at least 10ms"),
        ('interval = "9ms"', "interval: must be at least 10ms"),
        ('interval = "25h"', "interval: must be at most 24h"),
        ("interval = 1e12", "interval: must be at most 8784h"),  # crashed `run` in APScheduler
        ('timeout = "1ms"', "timeout: must be at least 10ms"),
        ('timeout = "11m"', "timeout: must be at most 10m"),
        ("unknown_grace = 1e12", "unknown_grace: must be at most 8784h"),
        ('warn = "0s"', "warn: must be above 0"),
        ('critical = "0s"', "critical: must be above 0"),
        ("trip_after = 101", "trip_after: Input should be less than or equal to 100"),
        ("clear_after = 1000000", "clear_after: Input should be less than or equal to 100"),
    ],
)
def test_a_watchdog_duration_or_count_out_of_bounds_is_refused(
    tmp_path: Path, setting: str, problem: str
) -> None:
    assert problems(tmp_path, SPX + setting) == [f"watchdogs[0] (spx).{problem}"]


@pytest.mark.parametrize(
    ("section", "problem"),
    [
        ('[redis]\ntimeout = "1ms"', "redis.timeout: must be at least 10ms"),
        # Postgres reads a statement_timeout that rounds to 0 ms as "no timeout at all".
        ('[postgres]\ntimeout = "0.5ms"', "postgres.timeout: must be at least 10ms"),
        ('[postgres]\ntimeout = "1h"', "postgres.timeout: must be at most 10m"),
        ('[ha]\nlease_ttl = "1s"', "ha.lease_ttl: must be at least 2s"),
        ('[ha]\nlease_ttl = "1h"', "ha.lease_ttl: must be at most 5m"),
        (BREAKER + "history_max = 10000000", "actuators.breaker.history_max: Input should be"),
        (
            '[actuators.flat]\nkind = "command"\nlevel = "flatten"\nargv = ["x"]\ntimeout = 0',
            "actuators.flat.timeout: must be at least 10ms",
        ),
        (
            '[actuators.k]\nkind = "http"\nlevel = "halted"\nurl = "http://h/"\ntimeout = "5ms"',
            "actuators.k.timeout: must be at least 10ms",
        ),
        (
            '[actuators.cod]\nkind = "deadman"\nurl = "http://h/"\ntimeout = "1h"',
            "actuators.cod.timeout: must be at most 10m",
        ),
    ],
)
def test_section_and_actuator_limits(tmp_path: Path, section: str, problem: str) -> None:
    [found] = problems(tmp_path, SPX, section)
    assert found.startswith(problem)


def test_lock_progress_window_must_span_more_than_one_interval(tmp_path: Path) -> None:
    # One ordinary renewal between two checks would already read as "renewed at every check".
    lock = '[[watchdogs]]\nname = "l"\nkind = "lock_ttl"\nkeys = ["lock"]\ninterval = "5s"\n'
    assert problems(tmp_path, lock + 'min_ttl_progress = "5s"') == [
        "watchdogs[0] (l): 'min_ttl_progress' must be longer than 'interval': one renewal"
        " between two checks would already breach"
    ]
    assert load(tmp_path, lock + 'min_ttl_progress = "6s"').watchdogs[0].name == "l"


def test_durations_at_their_bounds_load(tmp_path: Path) -> None:
    bounds = 'interval = "10ms"\ntimeout = "10m"\ntrip_after = 100\nclear_after = 100'
    watchdog = load(tmp_path, SPX + bounds, '[ha]\nlease_ttl = "2s"').watchdogs[0]
    assert (watchdog.interval_s, watchdog.timeout_s, watchdog.trip_after) == (0.01, 600.0, 100)


# --- session calendars ----------------------------------------------------------------------

CALENDAR = '[sessions.rth]\ntimezone = "America/New_York"\ndays = ["mon"]\n'


@pytest.mark.parametrize(
    ("open_", "problem"),
    [
        ("930", "a time of day is a TOML local time (09:30:00) or a string 'HH:MM[:SS]'"),
        ("9.5", "a time of day is a TOML local time (09:30:00) or a string 'HH:MM[:SS]'"),
        ('"9:30"', "a time of day is a TOML local time (09:30:00) or a string 'HH:MM[:SS]'"),
        ('"24:00"', "a time of day is a TOML local time (09:30:00) or a string 'HH:MM[:SS]'"),
        ('"09:30pm"', "a time of day is a TOML local time (09:30:00) or a string 'HH:MM[:SS]'"),
        ("2026-01-02T09:30:00", "a time of day is a TOML local time (09:30:00) or a string"),
    ],
)
def test_a_session_time_that_is_not_a_time_of_day_is_refused(
    tmp_path: Path, open_: str, problem: str
) -> None:
    # Before: `open = 930` loaded as 00:15:30 (930 seconds after midnight).
    [found] = problems(tmp_path, SPX, CALENDAR + f'open = {open_}\nclose = "16:00"')
    assert found.startswith(f"sessions.rth.open: {problem}")


@pytest.mark.parametrize(("open_", "expected"), [('"09:30"', "09:30:00"), ("09:30:15", "09:30:15")])
def test_session_times_as_strings_or_toml_times_load(
    tmp_path: Path, open_: str, expected: str
) -> None:
    session = load(tmp_path, SPX, CALENDAR + f'open = {open_}\nclose = "16:00"').sessions["rth"]
    assert session.open.isoformat() == expected


@pytest.mark.parametrize(
    ("holiday", "problem"),
    [
        ("86400", "a holiday is a TOML date (2026-12-25) or a string 'YYYY-MM-DD'"),
        ('"12/25/2026"', "a holiday is a TOML date (2026-12-25) or a string 'YYYY-MM-DD'"),
        ('"2026-02-30"', "'2026-02-30' is not a calendar date"),
        ("2026-12-25T00:00:00", "a holiday is a date, without a time of day"),
        ("2205-12-25", "2205-12-25 is outside 2000-2100: a typo?"),
        ('"1970-01-02"', "1970-01-02 is outside 2000-2100: a typo?"),
    ],
)
def test_a_holiday_that_is_not_a_plausible_date_is_refused(
    tmp_path: Path, holiday: str, problem: str
) -> None:
    # Before: `holidays = [86400]` loaded as 1970-01-02 (epoch seconds).
    calendar = CALENDAR + f'open = "09:30"\nclose = "16:00"\nholidays = ["2026-12-24", {holiday}]'
    assert problems(tmp_path, SPX, calendar) == [f"sessions.rth.holidays[1]: {problem}"]


def test_holidays_as_strings_or_toml_dates_load(tmp_path: Path) -> None:
    calendar = CALENDAR + 'open = "09:30"\nclose = "16:00"\nholidays = ["2026-12-24", 2026-12-25]'
    session = load(tmp_path, SPX, calendar).sessions["rth"]
    assert [day.isoformat() for day in session.holidays] == ["2026-12-24", "2026-12-25"]


# --- names of things elsewhere: keys, fields, instruments, values, headers, argv -----------


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('""', "must not be empty or only whitespace"),
        ('"   "', "must not be empty or only whitespace"),
        ('"ticks:SPX "', "has leading or trailing whitespace (invisible in the file: a typo?)"),
        ('"ticks:SPX\\n"', "has leading or trailing whitespace (invisible in the file: a typo?)"),
        ('"ticks:\\u0000SPX"', "contains the invisible character U+0000"),
        ('"ticks:\\u200bSPX"', "contains the invisible character U+200B"),
        ('"ticks:\\u001bSPX"', "contains the invisible character U+001B"),
    ],
)
@pytest.mark.parametrize("where", ["key", "field", "instruments"])
def test_a_redis_name_with_invisible_characters_or_blank_is_refused(
    tmp_path: Path, where: str, text: str, problem: str
) -> None:
    watchdog = f'[[watchdogs]]\nname = "t"\nkind = "tick_freshness"\nbreach = "15s"\n{where} = '
    watchdog += f"[{text}]" if where == "instruments" else text
    watchdog += '\nkey = "ticks:SPX"' if where != "key" else ""
    watchdog += '\ninstruments = ["SPX"]' if where != "instruments" else ""
    path = f"{where}[0]" if where == "instruments" else where
    assert problems(tmp_path, watchdog) == [f"watchdogs[0] (t).{path}: {problem}"]


TICKS = '[[watchdogs]]\nname = "t"\nkind = "tick_freshness"\nkey = "ticks:{instrument}"\n'
TICKS += 'breach = "15s"\n'


@pytest.mark.parametrize(
    ("fragment", "problem"),
    [
        # `field = ""` was taken as "no field" and read the key itself.
        ('instruments = ["SPX"]\nfield = ""', "watchdogs[0] (t).field: must not be empty"),
        ('instruments = ["SPX", "SPX"]', "watchdogs[0] (t): 'instruments' lists an instrument"),
    ],
)
def test_tick_freshness_names_that_were_silently_accepted(
    tmp_path: Path, fragment: str, problem: str
) -> None:
    [found] = problems(tmp_path, TICKS + fragment)
    assert found.startswith(problem)


@pytest.mark.parametrize(
    ("actuator", "problem"),
    [
        (
            '[actuators.flag]\nkind = "redis_flag"\nlevel = "halted"\nkey = "kill"\nvalue = ""',
            "actuators.flag.value: must not be empty or only whitespace",
        ),
        (
            BREAKER + 'key = "circuit_breaker:state\\t"',
            "actuators.breaker.key: has leading or trailing whitespace",
        ),
        (
            '[actuators.flat]\nkind = "command"\nlevel = "flatten"\nargv = [" "]',
            "actuators.flat.argv: must not be empty or only whitespace",
        ),
        (
            '[actuators.flat]\nkind = "command"\nlevel = "flatten"\nargv = ["flatten", "a\\u0000"]',
            "actuators.flat.argv: argument 1 contains a NUL character",
        ),
    ],
)
def test_actuator_names_and_values_that_would_fail_or_mislead_are_refused(
    tmp_path: Path, actuator: str, problem: str
) -> None:
    [found] = problems(tmp_path, actuator, SPX)
    assert found.startswith(problem)


KILL = '[actuators.kill]\nkind = "http"\nlevel = "halted"\nurl = "http://venue/kill"\n'


@pytest.mark.parametrize(
    ("headers", "problem"),
    [
        ('{ "X Key" = "v" }', "'X Key' is not an HTTP header name"),
        ('{ "" = "v" }', "'' is not an HTTP header name"),
        (
            '{ X-Key = "caf\\u00e9" }',
            "X-Key: the value holds a character an HTTP header cannot carry",
        ),
        (
            '{ X-Key = "a\\r\\nX-Injected: 1" }',
            "X-Key: the value holds a character an HTTP header cannot carry",
        ),
    ],
)
def test_headers_httpx_cannot_send_are_refused(tmp_path: Path, headers: str, problem: str) -> None:
    # A non-ASCII value raised UnicodeEncodeError inside httpx at the first call.
    [found] = problems(tmp_path, KILL + f"headers = {headers}", SPX)
    assert found.startswith(f"actuators.kill.headers: {problem}")


def test_a_bad_header_value_from_a_secret_is_refused_without_showing_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOKEN", "s3cr\u00e9t\n")
    [found] = problems(tmp_path, KILL + 'headers = { Authorization = "Bearer ${TOKEN}" }', SPX)
    assert found.startswith("actuators.kill.headers: Authorization: the value holds")
    assert "s3cr" not in found


def test_an_idempotency_header_must_be_a_header_name(tmp_path: Path) -> None:
    [found] = problems(tmp_path, KILL + 'idempotency_header = "Idempotency Key"', SPX)
    assert (
        found == "actuators.kill.idempotency_header: 'Idempotency Key' is not an HTTP header name"
    )


@pytest.mark.parametrize(
    ("query", "problem"),
    [('"  "', "must not be empty or only whitespace"), ('"SELECT\\u0000 1"', "U+0000")],
)
def test_a_blank_or_binary_query_is_refused(tmp_path: Path, query: str, problem: str) -> None:
    sql = f'[[watchdogs]]\nname = "q"\nkind = "sql_value"\nbreach = 1\nquery = {query}'
    [found] = problems(tmp_path, sql)
    assert found.startswith("watchdogs[0] (q).query: ") and problem in found


def test_a_multi_line_query_still_loads(tmp_path: Path) -> None:
    sql = '[[watchdogs]]\nname = "q"\nkind = "sql_value"\nbreach = 1\n'
    sql += 'query = """\nSELECT count(*)\n\tFROM orders\n"""'
    assert load(tmp_path, sql).watchdogs[0].name == "q"


# --- a config that watches nothing ----------------------------------------------------------


@pytest.mark.parametrize("extra", ["", BREAKER])
def test_a_config_without_watchdogs_is_refused(tmp_path: Path, extra: str) -> None:
    # Before: it validated ("0 watchdogs") and `check` said OK.
    assert problems(tmp_path, extra) == [NO_WATCHDOGS]
    empty_list = tmp_path / "empty-list.toml"
    empty_list.write_text("watchdogs = []\n" + extra, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(empty_list)
    assert caught.value.problems == [NO_WATCHDOGS]


# --- the file itself ------------------------------------------------------------------------


def refused_file(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return caught.value.problems


def test_a_character_device_is_refused_at_once() -> None:
    # Before: `--config /dev/zero` read forever (and would have filled memory).
    assert refused_file(Path("/dev/zero")) == ["not a regular file (a character device)"]


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "supervisor.toml"
    os.mkfifo(fifo)
    assert refused_file(fifo) == ["not a regular file (a pipe)"]


def test_a_directory_is_refused(tmp_path: Path) -> None:
    assert refused_file(tmp_path) == ["not a regular file (a directory)"]


def test_a_file_over_sixteen_mib_is_refused(tmp_path: Path) -> None:
    big = write(tmp_path, SPX)
    with big.open("a", encoding="utf-8") as file:
        file.write("#" * MAX_CONFIG_BYTES)
    assert refused_file(big) == ["larger than 16 MiB: not a config file"]


def test_a_file_of_exactly_the_limit_loads(tmp_path: Path) -> None:
    path = write(tmp_path, SPX)
    padding = MAX_CONFIG_BYTES - path.stat().st_size - 1
    with path.open("a", encoding="utf-8") as file:
        file.write("#" * padding + "\n")
    assert path.stat().st_size == MAX_CONFIG_BYTES
    assert load_config(path).watchdogs[0].name == "spx"


def test_a_watchdog_over_100000_instruments_loads(tmp_path: Path) -> None:
    # Over 1 MiB: the limit was 1 MiB once, and refused the scale the docs promise.
    names = [f"XNAS.INSTRUMENT{i:06d}" for i in range(100_000)]
    text = SPX.replace('instruments = ["SPX"]', f"instruments = {json.dumps(names)}")
    text = text.replace('key = "ticks:SPX"', 'key = "ticks:{instrument}"')
    path = write(tmp_path, text)
    assert path.stat().st_size > 2 << 20
    watchdog = load_config(path).watchdogs[0]
    assert isinstance(watchdog, TickFreshnessConfig) and len(watchdog.instruments) == 100_000


def test_toml_nested_too_deeply_is_refused(tmp_path: Path) -> None:
    # Before: tomllib's RecursionError escaped load_config (a traceback, exit 1).
    path = tmp_path / "deep.toml"
    path.write_text("x = " + "[" * 100_000, encoding="utf-8")
    assert refused_file(path) == ["not valid TOML: nested too deeply"]


# --- what the commands do with it: exit 78 and one clear line, `run` included ---------------

LISTEN_99999 = '[metrics]\nlisten = "127.0.0.1:99999"'


@pytest.mark.parametrize(
    ("parts", "line"),
    [
        ((VALUE + "breach = nan",), "watchdogs[0] (v).breach: Input should be a finite number"),
        ((SPX, LISTEN_99999), "metrics.listen: port 99999 is out of range 1-65535"),
        ((BREAKER,), NO_WATCHDOGS),
    ],
)
@pytest.mark.parametrize("command", [["config", "validate"], ["check"], ["run"]])
def test_the_commands_refuse_it_with_exit_78_check_with_unknown(
    tmp_path: Path, parts: tuple[str, ...], line: str, command: list[str]
) -> None:
    # Before: each validated (`check` said OK), and `run` with port 99999 died in bind()
    # with an OverflowError: exit 1, which systemd restarts in a loop (78 it does not).
    config = tmp_path / "supervisor.toml"
    supervisor = f'[supervisor]\ninstance_id = "t"\nstate_dir = "{tmp_path / "state"}"\n'
    nowhere = '[redis]\nurl = "redis://127.0.0.1:1/0"\n'  # should it start, it touches nothing
    config.write_text("\n".join((supervisor, nowhere, *parts)), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "supervisor", *command, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if command == ["check"]:  # a Nagios plugin: UNKNOWN, the problem on its one line
        assert done.returncode == 3
        assert done.stdout.startswith("TRADING-SUPERVISOR UNKNOWN - bad config: ")
        assert line in done.stdout
    else:
        assert (done.returncode, done.stdout) == (78, "")
    assert f"  {line}\n" in done.stderr
    assert "Traceback" not in done.stderr


def test_config_validate_refuses_dev_zero_with_exit_78() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "supervisor", "config", "validate", "/dev/zero"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 78
    assert done.stderr.endswith(  # after the install check's warning, where it applies
        "trading-supervisor: invalid configuration in /dev/zero:\n"
        "  not a regular file (a character device)\n"
    )


@pytest.mark.parametrize(
    ("state_dir", "problem"),
    [
        ('""', "must be an absolute path (latches are restored from it)"),  # was the cwd
        ('"state"', "must be an absolute path (latches are restored from it)"),
        ('"/var/lib/x\\u0000y"', "contains a NUL character"),
    ],
)
def test_a_state_dir_that_would_lose_latches_is_refused(
    tmp_path: Path, state_dir: str, problem: str
) -> None:
    path = tmp_path / "supervisor.toml"
    path.write_text(f"[supervisor]\nstate_dir = {state_dir}\n{SPX}", encoding="utf-8")
    assert refused_file(path) == [f"supervisor.state_dir: {problem}"]


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        # os.environ holds undecodable bytes as lone surrogates: they reached redis-py and
        # httpx, which raised on them at connect time outside the errors they document.
        ("SUPERVISOR_REDIS__URL", "redis://h\udcff:6379/0", "redis.url: a URL cannot contain"),
        ("SUPERVISOR_REDIS__PASSWORD", "pw\udcff", "redis.password: the secret holds bytes"),
        ("SUPERVISOR_REDIS__USERNAME", "u\udcff", "redis.username: contains the invisible"),
    ],
)
def test_undecodable_bytes_from_the_environment_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, problem: str
) -> None:
    monkeypatch.setenv(variable, value)
    [found] = problems(tmp_path, SPX)
    assert found.startswith(problem)


def test_an_http_url_with_undecodable_bytes_is_refused(tmp_path: Path) -> None:
    health = '[[watchdogs]]\nname = "h"\nkind = "http_health"\nurl = "http://h/\\udcff"'
    with pytest.raises(ConfigError):  # TOML itself cannot hold a lone surrogate
        load(tmp_path, health)
    with pytest.raises(ValueError, match="cannot contain spaces or control characters"):
        check_http_url("http://h/\udcff")

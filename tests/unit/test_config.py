"""load_config: schema, field paths in errors, env overrides, secrets and redaction."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from supervisor import kinds
from supervisor.config.loading import find_config, load_config, redacted
from supervisor.config.settings import Settings
from supervisor.errors import ConfigError
from supervisor.protection import unmet_needs
from supervisor.watchdogs.redis_value import RedisValueConfig
from supervisor.watchdogs.tick_freshness import TickFreshnessConfig

BASE = """
[supervisor]
instance_id = "test-host"
"""
BREAKER = """
[actuators.breaker]
kind = "redis_breaker"
"""
SESSION = """
[sessions.rth]
timezone = "America/New_York"
days = ["mon", "tue", "wed", "thu", "fri"]
open = 09:30:00
close = 16:00:00
"""
SPX = """
[[watchdogs]]
name = "spx"
kind = "tick_freshness"
key = "ticks:SPX"
instruments = ["SPX"]
breach = "15s"
"""


def write(tmp_path: Path, *parts: str) -> Path:
    path = tmp_path / "supervisor.toml"
    path.write_text("\n".join((BASE, *parts)), encoding="utf-8")
    return path


def load(tmp_path: Path, *parts: str) -> Settings:
    return load_config(write(tmp_path, *parts))


def problems(tmp_path: Path, *parts: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, *parts)
    return caught.value.problems


def tick_freshness(settings: Settings, index: int = 0) -> TickFreshnessConfig:
    watchdog = settings.watchdogs[index]
    assert isinstance(watchdog, TickFreshnessConfig)
    return watchdog


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("SUPERVISOR_") or name == "CREDENTIALS_DIRECTORY":
            monkeypatch.delenv(name)


def test_a_minimal_config_loads(tmp_path: Path) -> None:
    settings = load(tmp_path, BREAKER, SPX + 'on_breach = ["breaker"]')
    assert settings.supervisor.instance_id == "test-host"
    assert tick_freshness(settings).on_breach == ["breaker"]
    assert tick_freshness(settings).breach_s == 15.0


def test_durations_become_seconds_in_the_s_fields(tmp_path: Path) -> None:
    extra = 'interval = "250ms"\nwarn = "5s"\ncritical = "1m"\nunknown_grace = "1h"'
    watchdog = tick_freshness(load(tmp_path, SPX + extra, '[redis]\ntimeout = "250ms"'))
    assert (watchdog.interval_s, watchdog.warn_s, watchdog.critical_s) == (0.25, 5.0, 60.0)
    assert watchdog.unknown_grace_s == 3600.0


def test_a_bad_watchdog_field_is_named_by_index_and_name(tmp_path: Path) -> None:
    assert problems(tmp_path, SPX.replace('"15s"', '"soon"')) == [
        "watchdogs[0] (spx).breach: invalid duration 'soon': use '250ms', '15s', '5m', '1h'"
        " or seconds"
    ]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[bogus]\nx = 1", "bogus: Extra inputs are not permitted"),
        ("[redis]\nbogus = 1", "redis.bogus: Extra inputs are not permitted"),
        (SESSION + "bogus = 1", "sessions.rth.bogus: Extra inputs are not permitted"),
        (SPX + "bogus = 1", "watchdogs[0] (spx).bogus: Extra inputs are not permitted"),
        (BREAKER + "bogus = 1", "actuators.breaker.bogus: Extra inputs are not permitted"),
    ],
)
def test_unknown_keys_are_rejected_at_every_level(tmp_path: Path, text: str, problem: str) -> None:
    assert problems(tmp_path, text) == [problem]


def test_an_unknown_supervisor_key_is_named(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text('[supervisor]\nbogus = "x"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.problems == ["supervisor.bogus: Extra inputs are not permitted"]


def test_environment_overrides_win_over_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, SPX, '[redis]\nurl = "redis://file:6379/0"\ntimeout = "3s"')
    monkeypatch.setenv("SUPERVISOR_REDIS__URL", "redis://env:6379/1")
    monkeypatch.setenv("SUPERVISOR_SUPERVISOR__DRY_RUN", "true")
    settings = load_config(path)
    assert settings.redis.url == "redis://env:6379/1"
    assert settings.redis.timeout_s == 3.0  # the rest of the section still from the file
    assert settings.supervisor.dry_run is True
    assert settings.supervisor.instance_id == "test-host"


def test_a_bad_environment_override_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SUPERVISOR_SUPERVISOR__DRY_RUN", "maybe")
    assert problems(tmp_path)[0].startswith("supervisor.dry_run: ")


def test_an_unparsable_environment_section_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # load_config promises that every problem becomes a ConfigError (exit 78).
    monkeypatch.setenv("SUPERVISOR_REDIS", "{not json")
    with pytest.raises(ConfigError):
        load(tmp_path)


def test_a_huge_integer_duration_is_a_config_error(tmp_path: Path) -> None:
    # tomllib reads integers of any size; float() of one this big raises OverflowError.
    with pytest.raises(ConfigError):
        load(tmp_path, "[redis]\ntimeout = 1" + "0" * 400)


def test_secrets_interpolate_environment_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOKEN", "tok-123")
    settings = load(tmp_path, SPX, '[redis]\npassword = "Bearer ${TOKEN}"')
    assert settings.redis.password is not None
    assert settings.redis.password.get_secret_value() == "Bearer tok-123"


def test_a_missing_variable_is_named_but_no_value_is_shown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOKEN", "tok-123")
    monkeypatch.delenv("MISSING_VAR", raising=False)
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, '[redis]\npassword = "${TOKEN}:${MISSING_VAR}"')
    assert caught.value.problems == ["redis.password: environment variable MISSING_VAR is not set"]
    assert "tok-123" not in str(caught.value)


def test_credentials_are_read_from_the_credentials_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "redis_pw").write_text("hunter2\n", encoding="utf-8")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    settings = load(tmp_path, SPX, '[redis]\npassword = "cred:redis_pw"')
    assert settings.redis.password is not None
    assert settings.redis.password.get_secret_value() == "hunter2"


def test_a_credential_without_credentials_directory_is_an_error(tmp_path: Path) -> None:
    [problem] = problems(tmp_path, '[redis]\npassword = "cred:redis_pw"')
    assert problem.startswith("redis.password: cred:redis_pw needs $CREDENTIALS_DIRECTORY")


def test_a_missing_credential_file_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path / "creds"))
    [problem] = problems(tmp_path, '[redis]\npassword = "cred:redis_pw"')
    assert problem.startswith("redis.password: cannot read credential redis_pw: ")


def test_redacted_never_contains_a_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PW", "pw-in-env")
    monkeypatch.setenv("DSN", "postgresql://u:dsn-secret@db/x")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    (tmp_path / "api_token").write_text("cred-secret\n", encoding="utf-8")
    redis = '[redis]\nurl = "redis://:hunter2@127.0.0.1:6379/0"\npassword = "${PW}"'
    api = """
[actuators.api]
kind = "http"
level = "halted"
url = "https://oms.example/halt"
headers = { Authorization = "Bearer ${PW}", X-Key = "cred:api_token" }
"""
    settings = load(tmp_path, SPX, redis, '[postgres]\ndsn = "${DSN}"', api)
    dump = json.dumps(redacted(settings), default=str)
    for secret in ("hunter2", "pw-in-env", "dsn-secret", "cred-secret"):
        assert secret not in dump
    assert "127.0.0.1:6379/0" in dump


@pytest.mark.parametrize(
    "url",
    [
        "redis://default:hunter2@127.0.0.1:6379/0",
        "rediss://:hunter2@redis.internal:6380/0",
        "redis://127.0.0.1:6379/0?password=hunter2",  # redis-py reads this password too
    ],
)
def test_redacted_masks_a_password_in_any_redis_url(tmp_path: Path, url: str) -> None:
    settings = load(tmp_path, SPX, f'[redis]\nurl = "{url}"')
    assert "hunter2" not in json.dumps(redacted(settings), default=str)


@pytest.mark.parametrize(
    ("thresholds", "problem"),
    [
        ('warn = "20s"', "watchdogs[0] (spx): 'warn' (20) must be below 'breach' (15)"),
        ('critical = "15s"', "watchdogs[0] (spx): 'breach' (15) must be below 'critical' (15)"),
    ],
)
def test_thresholds_out_of_order_are_rejected(
    tmp_path: Path, thresholds: str, problem: str
) -> None:
    assert problems(tmp_path, SPX + thresholds) == [problem]


def test_below_thresholds_must_descend(tmp_path: Path) -> None:
    value = '[[watchdogs]]\nname = "margin"\nkind = "redis_value"\nkey = "k"\n'
    assert problems(tmp_path, value + 'direction = "below"\nwarn = 10\nbreach = 20') == [
        "watchdogs[0] (margin): 'warn' (10) must be above 'breach' (20)"
    ]
    good = load(tmp_path, value + 'direction = "below"\nwarn = 20\nbreach = 10').watchdogs[0]
    assert isinstance(good, RedisValueConfig) and (good.warn, good.breach) == (20, 10)


@pytest.mark.parametrize(
    ("refs", "problem"),
    [
        ('on_breach = ["nope"]', "watchdogs[0] (spx).on_breach: no actuator named 'nope'"),
        ('on_warn = ["breaker", "x"]', "watchdogs[0] (spx).on_warn: no actuator named 'x'"),
        ('session = "rth"', "watchdogs[0] (spx).session: no session named 'rth'"),
    ],
)
def test_references_to_missing_actuators_or_sessions(
    tmp_path: Path, refs: str, problem: str
) -> None:
    assert problems(tmp_path, BREAKER, SPX + refs) == [problem]


def test_a_deadman_is_not_an_action(tmp_path: Path) -> None:
    deadman = '[actuators.ping]\nkind = "deadman"\nurl = "https://hc.example/ping"'
    assert problems(tmp_path, deadman, SPX + 'on_critical = ["ping"]') == [
        "watchdogs[0] (spx).on_critical: 'ping' is a deadman, not an action"
    ]


def test_watchdog_references_resolve(tmp_path: Path) -> None:
    settings = load(tmp_path, BREAKER, SESSION, SPX + 'session = "rth"\non_breach = ["breaker"]')
    assert settings.watchdogs[0].session == "rth"
    assert settings.watchdogs[0].on_breach == ["breaker"]


def test_duplicate_watchdog_names_are_rejected(tmp_path: Path) -> None:
    assert problems(tmp_path, SPX, SPX) == ["watchdog names must be unique; repeated: spx"]


def test_an_invalid_jmespath_is_rejected(tmp_path: Path) -> None:
    [problem] = problems(tmp_path, SPX + 'json_field = "ts[?"')
    assert problem.startswith("watchdogs[0] (spx).json_field: invalid jmespath expression 'ts[?'")


def test_the_second_watchdog_is_named_in_its_path(tmp_path: Path) -> None:
    second = SPX.replace('"spx"', '"es"').replace('"SPX"', '"ES"') + "trip_after = 0"
    [problem] = problems(tmp_path, SPX, second)
    assert problem.startswith("watchdogs[1] (es).trip_after: ")


def test_unreadable_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "absent.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[redis\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)


def test_find_config_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    system, local = tmp_path / "etc.toml", tmp_path / "local.toml"
    monkeypatch.setattr("supervisor.config.loading.CONFIG_PATHS", (str(system), str(local)))
    assert find_config(None) == system  # nothing exists: the system path, for the error
    local.touch()
    assert find_config(None) == local
    system.touch()
    assert find_config(None) == system
    monkeypatch.setenv("SUPERVISOR_CONFIG", str(tmp_path / "env.toml"))
    assert find_config(None) == tmp_path / "env.toml"
    assert find_config(str(tmp_path / "cli.toml")) == tmp_path / "cli.toml"


def test_an_unknown_kind_is_named_by_path_with_the_registered_ones(tmp_path: Path) -> None:
    unknown = SPX.replace('"tick_freshness"', '"tick_age"') + BREAKER.replace(
        '"redis_breaker"', '"breaker"'
    )
    # in the registry's order (supervisor/kinds.py), the deadman last among [actuators]
    actuators = ", ".join(f"'{kind.name}'" for kind in (*kinds.ACTUATOR_KINDS, kinds.DEADMAN_KIND))
    watchdogs = ", ".join(f"'{kind.name}'" for kind in kinds.WATCHDOG_KINDS)
    assert problems(tmp_path, unknown) == [
        "actuators.breaker: Input tag 'breaker' found using 'kind' does not match any of the"
        f" expected tags: {actuators}",
        "watchdogs[0] (spx): Input tag 'tick_age' found using 'kind' does not match any of the"
        f" expected tags: {watchdogs}",
    ]


def test_a_postgres_kind_needs_a_dsn(tmp_path: Path) -> None:
    poison = (
        '[[watchdogs]]\nname = "poison"\nkind = "poison_queue"\nquery = "SELECT 1"\nbreach = 10'
    )
    assert unmet_needs(load(tmp_path, poison)) == ["watchdogs[0] (poison): needs [postgres] dsn"]


def test_a_mistyped_environment_override_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SUPERVISOR_SUPERVISOR__DRYRUN", "true")  # in the shape, no such key
    found = problems(tmp_path)
    assert len(found) == 1
    assert found[0].startswith("environment SUPERVISOR_SUPERVISOR__DRYRUN: not a setting")


def test_a_mistyped_lower_case_override_is_refused_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pydantic-settings reads overrides whatever their case; so does the check."""
    monkeypatch.setenv("supervisor_supervisr__dry_run", "true")
    found = problems(tmp_path)
    assert len(found) == 1
    assert found[0].startswith("environment supervisor_supervisr__dry_run: not a setting")


def test_a_variable_not_in_the_settings_shape_is_someone_elses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """supervisord's SUPERVISOR_ENABLED, a script's SUPERVISOR_BIN, and an override written
    with one underscore: not settings, ignored (tests/unit/test_config_environment.py)."""
    for name in ("SUPERVISOR_ENABLED", "SUPERVISOR_BIN", "SUPERVISOR_SUPERVISOR_DRY_RUN"):
        monkeypatch.setenv(name, "true")
    assert load(tmp_path, SPX).supervisor.dry_run is False


def test_the_config_path_variable_is_not_an_override(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SUPERVISOR_CONFIG", str(tmp_path / "elsewhere.toml"))
    assert load(tmp_path, SPX).supervisor.instance_id == "test-host"


def test_redacted_masks_credentials_in_every_url(tmp_path: Path) -> None:
    deadman = """
[actuators.venue]
kind = "deadman"
url = "https://ops:s3cret@venue.example/cancel-after?password=s3cret&timeout=1"
"""
    shown = json.dumps(redacted(load(tmp_path, SPX, deadman)))
    assert "s3cret" not in shown and "//ops" not in shown  # the whole user part
    assert "venue.example/cancel-after?password=**********&timeout=1" in shown


def test_redacted_masks_token_and_api_key_parameters_anywhere(tmp_path: Path) -> None:
    parts = """
[actuators.venue]
kind = "http"
level = "halted"
url = "https://oms.example/halt?token=SECRET123&symbol=ES"

[actuators.script]
kind = "command"
level = "flatten"
argv = ["curl", "https://oms.example/flatten?api_key=SECRET789"]

[[watchdogs]]
name = "prom"
kind = "prometheus_query"
url = "http://user:SECRET456@127.0.0.1:9090"
query = "up"
breach = 1
"""
    shown = json.dumps(redacted(load(tmp_path, parts)))
    for secret in ("SECRET123", "SECRET456", "SECRET789"):
        assert secret not in shown
    assert "symbol=ES" in shown  # a harmless parameter is still shown


def test_auto_reset_is_only_for_a_reduce_only_breaker(tmp_path: Path) -> None:
    halted = 'kind = "redis_breaker"\nlevel = "halted"\nauto_reset_after = "5m"'
    found = problems(tmp_path, SPX, "[actuators.breaker]\n" + halted)
    assert found == [
        "actuators.breaker: 'auto_reset_after' is allowed only for a reduce_only breaker"
    ]
    assert load(tmp_path, SPX, BREAKER + 'auto_reset_after = "5m"').actuators["breaker"].kind


def test_on_failure_must_name_another_actuator(tmp_path: Path) -> None:
    kill = '[actuators.kill]\nkind = "command"\nlevel = "flatten"\nargv = ["true"]\n'
    kill += 'on_failure = ["nope"]'
    assert problems(tmp_path, SPX, kill) == [
        "actuators.kill.on_failure: no other actuator named 'nope'"
    ]


def test_on_failure_cannot_name_a_deadman(tmp_path: Path) -> None:
    kill = '[actuators.kill]\nkind = "command"\nlevel = "flatten"\nargv = ["true"]\n'
    kill += 'on_failure = ["cod"]'
    deadman = '[actuators.cod]\nkind = "deadman"\nurl = "http://127.0.0.1:1/cod"'
    assert problems(tmp_path, SPX, kill, deadman) == [
        "actuators.kill.on_failure: 'cod' is a deadman, not an action"
    ]


def test_every_action_actuator_may_escalate(tmp_path: Path) -> None:
    flag = '[actuators.flag]\nkind = "redis_flag"\nlevel = "halted"\nkey = "k"'
    settings = load(tmp_path, SPX, BREAKER + 'on_failure = ["flag"]', flag)
    assert settings.actuators["breaker"].on_failure == ["flag"]  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("redis+sentinel://h:26379/", "redis.url: names no service"),
        ("http://127.0.0.1:6379", "redis.url: must start with redis://, rediss://, unix://"),
    ],
)
def test_redis_urls_redis_py_cannot_open_are_refused(
    tmp_path: Path, url: str, problem: str
) -> None:
    found = problems(tmp_path, f'[redis]\nurl = "{url}"')
    assert len(found) == 1
    assert found[0].startswith(problem)


def test_a_config_error_has_one_line_per_problem_whatever_the_file_holds(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, '[metrics]\n"evil\\nWATCHDOG=1\\u001b]0;t\\u0007" = 1')
    lines = str(caught.value).split("\n")
    assert len(lines) == 1 + len(caught.value.problems)
    assert lines[1] == "  metrics.evil\\x0aWATCHDOG=1\\x1b]0;t\\x07: Extra inputs are not permitted"

"""Which SUPERVISOR_* variables are settings: supervisord's own are not, a mistyped override
in the settings' shape is refused. The property ties the check to pydantic-settings itself:
whatever the check calls "not a setting", pydantic-settings really ignores."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from supervisor.cli import main
from supervisor.config.environment import (
    Kind,
    classify,
    ignored_note,
    ignored_variables,
    unknown_settings,
)
from supervisor.config.loading import load_config
from supervisor.config.settings import Settings
from supervisor.constants import EX_CONFIG, EX_OK
from supervisor.errors import ConfigError

CONFIG = """
[supervisor]
instance_id = "env-test"
state_dir = "/var/lib/trading-supervisor"

[[watchdogs]]
name = "spx"
kind = "tick_freshness"
key = "ticks:SPX"
instruments = ["SPX"]
breach = "15s"
"""
DATA = tomllib.loads(CONFIG)
SUPERVISORD = {  # what supervisord 4.2 puts into every program's environment
    "SUPERVISOR_ENABLED": "1",
    "SUPERVISOR_PROCESS_NAME": "trading-supervisor",
    "SUPERVISOR_GROUP_NAME": "trading-supervisor",
    "SUPERVISOR_SERVER_URL": "unix:///var/run/supervisor.sock",
}


@contextmanager
def environment(extra: dict[str, str]) -> Iterator[None]:
    """os.environ without any SUPERVISOR_* variable of the test run's, plus `extra`."""
    saved = dict(os.environ)
    try:
        for name in [n for n in os.environ if n.upper().startswith("SUPERVISOR_")]:
            del os.environ[name]
        os.environ.update(extra)
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


with environment({}):
    BASELINE = Settings(**DATA)

SECTIONS = sorted(Settings.model_fields)
KEYS = ["url", "timeout", "timeout_s", "dry_run", "enabled", "listen", "lease_ttl", "breaker"]
WORDS = ["ENABLED", "PROCESS", "NAME", "GROUP", "SERVER", "URL", "BIN", "HOME", "X", ""]
PART = st.one_of(
    st.sampled_from(SECTIONS + KEYS + WORDS),
    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", max_size=6),
)
SEPARATOR = st.sampled_from(["_", "__", "___"])
PREFIX = st.sampled_from(["SUPERVISOR_", "supervisor_", "Supervisor_", "SUPERVISOR", "SUPER_"])


@st.composite
def names(draw: st.DrawFn) -> str:
    """Names near the settings' shape: sections, keys and other programs' words, joined by
    one, two or three underscores, in any case."""
    name = draw(PREFIX) + draw(PART)
    for _ in range(draw(st.integers(0, 3))):
        name += draw(SEPARATOR) + draw(PART)
    return name.swapcase() if draw(st.booleans()) else name


VALUES = st.sampled_from(["1", "true", "x", "{}", "[]", '{"url": "redis://10.0.0.5:6379/0"}'])


@settings(max_examples=300, deadline=None)
@given(name=names(), value=VALUES)
def test_what_the_check_ignores_pydantic_settings_ignores_too(name: str, value: str) -> None:
    kind = classify(name)
    if kind in (Kind.NOT_A_SETTING, Kind.NOT_OURS):
        with environment({name: value}):
            assert Settings(**DATA) == BASELINE  # not consumed, not refused
    if kind is Kind.UNKNOWN_SETTING:  # refused only in the settings' shape
        assert "__" in name.upper().removeprefix("SUPERVISOR_")
        assert unknown_settings({name: value}) and ignored_variables({name: value}) == []
    if "__" not in name:  # without the double underscore, never refused
        assert kind is not Kind.UNKNOWN_SETTING
    assert classify(name.swapcase()) is kind  # any case, as pydantic-settings reads them


@settings(max_examples=200, deadline=None)
@given(name=names())
def test_what_names_no_setting_is_refused_by_load_config_naming_it(
    tmp_path_factory: pytest.TempPathFactory, name: str
) -> None:
    value = "s3cret-value"
    path = tmp_path_factory.getbasetemp() / "supervisor.toml"
    path.write_text(CONFIG, encoding="utf-8")
    if classify(name) is not Kind.UNKNOWN_SETTING:
        return
    with environment({name: value}), pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.problems[0].startswith(f"environment {name}: not a setting")
    assert value not in str(caught.value)  # names it, never its value


@pytest.mark.parametrize("name", [*SUPERVISORD, "SUPERVISOR_BIN", "supervisor_home"])
def test_supervisords_and_a_scripts_variables_are_not_settings(name: str) -> None:
    assert classify(name) is Kind.NOT_A_SETTING


def test_under_supervisord_the_config_loads_and_the_variables_are_named_once(
    tmp_path: Path,
) -> None:
    path = tmp_path / "supervisor.toml"
    path.write_text(CONFIG, encoding="utf-8")
    variables = {**SUPERVISORD, "SUPERVISOR_BIN": "/opt/trading-supervisor/venv/bin"}
    with environment(variables):
        assert load_config(path) == BASELINE
    assert ignored_variables(variables) == sorted(variables)
    note = ignored_note(variables)
    assert note is not None and all(name in note for name in variables)
    assert "/opt" not in note and "unix://" not in note  # names, never values


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("SUPERVISOR_SUPERVISOR__DRY_RUN", Kind.SETTING),
        ("supervisor_redis__timeout", Kind.SETTING),  # the key as written in the file
        ("SUPERVISOR_REDIS__TIMEOUT_S", Kind.SETTING),  # and the field's own name
        ("SUPERVISOR_ACTUATORS__BREAKER__KEY", Kind.SETTING),  # a name of the user's
        ("SUPERVISOR_WATCHDOGS", Kind.SETTING),  # a whole section as JSON
        ("SUPERVISOR_CONFIG", Kind.NOT_OURS),  # the file's path
        ("SUPERVISOR_SUPERVISR__DRY_RUN", Kind.UNKNOWN_SETTING),  # no such section
        ("SUPERVISOR_REDIS__URLS", Kind.UNKNOWN_SETTING),  # no such key
        ("SUPERVISOR_REDIS__", Kind.UNKNOWN_SETTING),
        ("SUPERVISOR_SUPERVISOR_DRY_RUN", Kind.NOT_A_SETTING),  # one underscore: not the shape
    ],
)
def test_examples(name: str, kind: Kind) -> None:
    assert classify(name) is kind


def run_cli(
    tmp_path: Path, variables: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    path = tmp_path / "supervisor.toml"
    path.write_text(CONFIG.replace("/var/lib/trading-supervisor", str(tmp_path)), "utf-8")
    with environment(variables):
        code = main(["config", "validate", str(path)])
    out, err = capsys.readouterr()
    return code, out, err


def test_config_validate_under_supervisord_is_ok_and_says_what_it_ignored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(tmp_path, {**SUPERVISORD, "SUPERVISOR_BIN": "/usr/bin"}, capsys)
    assert code == EX_OK, err
    assert "OK (1 watchdogs" in out
    expected = ", ".join(sorted([*SUPERVISORD, "SUPERVISOR_BIN"]))
    assert err == f"trading-supervisor: note: environment {expected}: not" + (
        " SUPERVISOR_<SECTION>__<KEY>, so not settings; ignored\n"
    )


def test_config_validate_refuses_a_mistyped_override_with_78(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _out, err = run_cli(tmp_path, {**SUPERVISORD, "SUPERVISOR_REDIS__URLS": "x"}, capsys)
    assert code == EX_CONFIG
    assert "environment SUPERVISOR_REDIS__URLS: not a setting" in err
    assert "SUPERVISOR_ENABLED" not in err  # supervisord's are not the problem

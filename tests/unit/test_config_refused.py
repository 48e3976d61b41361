"""Values the config refuses, each with its field path: what would otherwise be silently
accepted and then never trip, trip on the wrong day, or crash `run` later.

The helpers and fragments are those of test_config.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.unit.test_config import BREAKER, SPX, clean_environment, load, problems

__all__ = ["clean_environment"]  # the autouse fixture, shared with test_config.py

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
